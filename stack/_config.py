"""Where the stack lives and which ports it uses.

Resolution order for every port: command-line flag, then ``INFERWATCH_STACK_<NAME>_PORT``,
then the ports saved by the last ``up`` in ``<datadir>/stack.json``, then the default.
The data directory: ``--data-dir``, then ``INFERWATCH_STACK_DIR``, then ``<repo>/.stack``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

STACK_PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = STACK_PACKAGE_DIR.parent
ALERTS_DIR = REPO_ROOT / "alerts"

#: name -> (default port, help text). The order is the start order.
PORTS: dict[str, tuple[int, str]] = {
    "elasticsearch": (19200, "Elasticsearch HTTP port"),
    "elasticsearch_transport": (19300, "Elasticsearch transport port"),
    "kafka": (19092, "Kafka broker (client) port"),
    "kafka_controller": (19093, "Kafka KRaft controller port"),
    "prometheus": (19090, "Prometheus port"),
    "pushgateway": (19091, "Pushgateway port"),
    "alertmanager": (19094, "Alertmanager port"),
    "webhook": (19095, "port of the webhook Alertmanager notifies (nothing listens by default)"),
    "elasticsearch_tls": (19243, "secure mode only: HTTPS port of the authenticating proxy in front of Elasticsearch"),
}

HOST = "127.0.0.1"
STATE_FILE = "stack.json"


def port_env_var(name: str) -> str:
    return f"INFERWATCH_STACK_{name.upper()}_PORT"


def default_data_dir() -> Path:
    env = os.environ.get("INFERWATCH_STACK_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return REPO_ROOT / ".stack"


@dataclass
class StackConfig:
    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    #: secure mode: Kafka only over SASL_SSL (SCRAM), Elasticsearch behind an HTTPS proxy that
    #: demands basic auth or an API key (see ``_tls`` and ``_authproxy``)
    secure: bool = False

    # --- paths -------------------------------------------------------------------------------
    def service_dir(self, service: str) -> Path:
        return self.data_dir / service

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def log_file(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    @property
    def prometheus_targets_dir(self) -> Path:
        return self.data_dir / "prometheus" / "targets"

    @property
    def secure_dir(self) -> Path:
        return self.data_dir / "secure"

    # --- endpoints ---------------------------------------------------------------------------
    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.ports['kafka']}"

    def endpoints(self) -> dict[str, str]:
        """The ``INFERWATCH_*`` variables the pipeline's configuration reads (in secure mode with
        the credentials and CA the clients need)."""
        out = {
            "INFERWATCH_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "INFERWATCH_ELASTICSEARCH_HOSTS": self.url("elasticsearch"),
            "INFERWATCH_PROMETHEUS_URL": self.url("prometheus"),
            "INFERWATCH_PUSHGATEWAY_URL": self.url("pushgateway"),
            "INFERWATCH_ALERTMANAGER_URL": self.url("alertmanager"),
            "INFERWATCH_STACK_DIR": str(self.data_dir),
        }
        if self.secure:
            from stack._tls import SecureFiles

            files = SecureFiles(self.secure_dir)
            creds = files.credentials() if files.credentials_file.is_file() else {}
            out.update({
                "INFERWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "INFERWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                "INFERWATCH_KAFKA_SASL_USERNAME": creds.get("kafka_username", ""),
                "INFERWATCH_KAFKA_SASL_PASSWORD": creds.get("kafka_password", ""),
                "INFERWATCH_KAFKA_SSL_CAFILE": str(files.ca),
                "INFERWATCH_ELASTICSEARCH_HOSTS": f"https://{HOST}:{self.ports['elasticsearch_tls']}",
                "INFERWATCH_ELASTICSEARCH_USERNAME": creds.get("es_username", ""),
                "INFERWATCH_ELASTICSEARCH_PASSWORD": creds.get("es_password", ""),
                "INFERWATCH_ELASTICSEARCH_CA_CERTS": str(files.ca),
                "INFERWATCH_STACK_SECURE": "1",
            })
        return out

    # --- saved state -------------------------------------------------------------------------
    def save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ports": self.ports, "secure": self.secure}, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


def load_config(data_dir: str | Path | None, flag_ports: dict[str, int | None],
                secure: bool | None = None) -> StackConfig:
    """Build the configuration from flags, environment, saved state and defaults.

    Secure mode: the ``--secure`` flag of ``up``, else ``INFERWATCH_STACK_SECURE=1``, else what
    the last ``up`` in this data directory saved."""
    root = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
    saved: dict[str, int] = {}
    saved_secure = False
    state = root / STATE_FILE
    if state.is_file():
        try:
            data = json.loads(state.read_text())
            saved = {k: int(v) for k, v in data.get("ports", {}).items()}
            saved_secure = bool(data.get("secure", False))
        except (ValueError, OSError, AttributeError):
            saved = {}
    if secure is None:
        env_secure = os.environ.get("INFERWATCH_STACK_SECURE")
        secure = env_secure == "1" if env_secure else saved_secure
    ports: dict[str, int] = {}
    for name, (default, _help) in PORTS.items():
        flag = flag_ports.get(name)
        env = os.environ.get(port_env_var(name))
        if flag is not None:
            ports[name] = int(flag)
        elif env:
            ports[name] = int(env)
        elif name in saved:
            ports[name] = saved[name]
        else:
            ports[name] = default
    return StackConfig(data_dir=root, ports=ports, secure=secure)
