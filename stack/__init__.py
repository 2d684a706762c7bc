"""The real services for tests and local runs, without Docker.

``python -m stack up`` starts, on the loopback interface only:

* Apache Kafka (KRaft, one combined broker + controller) from Maven Central jars,
* Elasticsearch (one node, booted from Maven Central jars by ``stack/elasticsearch``'s launcher),
* Prometheus, Alertmanager and Pushgateway from Debian's packages,

each with its data, logs and pid file under the stack's data directory (default
``<repo>/.stack``, or ``$INFERWATCH_STACK_DIR``). ``down`` stops exactly the processes that
``up`` started. Standard library only, so it runs before any virtualenv exists.

See ``python -m stack --help`` and ``stack/README.md``.
"""

from __future__ import annotations

__all__: list[str] = []
