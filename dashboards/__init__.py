"""What users look at: Grafana dashboards (generated from code) and Kibana saved objects.

The generated files ship inside the package (``dashboards/grafana/json/*.json``,
``dashboards/kibana/inferwatch.ndjson``), so ``inferwatch dashboards push`` works from an
installed wheel; regenerating them needs the ``dev`` extra (``grafana-foundation-sdk``).
"""

__all__: list[str] = []
