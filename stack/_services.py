"""The five services: how each is fetched, configured, started and health-checked."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from stack._config import ALERTS_DIR, HOST, STACK_PACKAGE_DIR, StackConfig
from stack._health import Health, elasticsearch_health, http_ready, https_ready, kafka_health


class StackError(RuntimeError):
    """A service could not be prepared or started; the message says why."""


@dataclass(frozen=True)
class Launch:
    command: list[str]
    cwd: Path
    env: dict[str, str] | None = None


class Service(ABC):
    name: str
    #: the port names (keys of ``stack._config.PORTS``) this service binds
    ports: tuple[str, ...]
    #: seconds ``up`` waits for it to become healthy
    start_timeout: float = 60.0

    @abstractmethod
    def prepare(self, cfg: StackConfig) -> None:
        """Fetch what is missing and write the configuration (idempotent, cached)."""

    @abstractmethod
    def launch(self, cfg: StackConfig) -> Launch: ...

    @abstractmethod
    def health(self, cfg: StackConfig) -> Health: ...

    def endpoint(self, cfg: StackConfig) -> str:
        return f"{HOST}:{cfg.ports[self.ports[0]]}"

    def _dir(self, cfg: StackConfig) -> Path:
        """This service's folder in the stack's data directory."""
        return cfg.service_dir(self.name)


# --- helpers ----------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


def _run(command: list[str], *, log: Path, what: str, env: dict[str, str] | None = None) -> str:
    """Run a preparation command; on failure raise with the tail of its output."""
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    with open(log, "a") as handle:
        handle.write(f"\n==== {' '.join(command)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        output = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise StackError(f"{what} failed (exit {proc.returncode}): {' '.join(command)}\n{output}")
    return proc.stdout


def _apt_install(packages: list[str], log: Path) -> None:
    if os.geteuid() != 0:
        raise StackError(
            f"missing {' '.join(packages)}; install them (apt-get install {' '.join(packages)}) or run as root"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    _say(f"installing {' '.join(packages)} with apt-get")
    try:
        _run(command, log=log, what="apt-get install", env=env)
    except StackError:
        _say("apt-get install failed; running apt-get update and trying again")
        _run(["apt-get", "update", "-q"], log=log, what="apt-get update", env=env)
        _run(command, log=log, what="apt-get install", env=env)


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def _java_feature_version(java_home: Path) -> int | None:
    release = java_home / "release"
    try:
        match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(), re.MULTILINE)
    except OSError:
        match = None
    if match:
        return int(match.group(1))
    java = java_home / "bin" / "java"
    if not java.exists():
        return None
    proc = subprocess.run([str(java), "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)', proc.stderr)
    return int(match.group(1)) if match else None


def find_java_home(minimum: int, env_var: str, *, need_javac: bool = False) -> Path:
    """A JDK of at least ``minimum``: ``$<env_var>``, ``$JAVA_HOME``, the one on PATH, /usr/lib/jvm/*."""
    candidates: list[Path] = []
    for var in (env_var, "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent.parent)
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        found = [p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()]
        found.sort(key=lambda p: _java_feature_version(p) or 0, reverse=True)
        candidates.extend(found)
    for home in candidates:
        version = _java_feature_version(home)
        if version is None or version < minimum:
            continue
        if need_javac and not (home / "bin" / "javac").exists():
            continue
        if (home / "bin" / "java").exists():
            return home
    what = "JDK (with javac)" if need_javac else "Java runtime"
    raise StackError(
        f"no {what} >= {minimum} found; set {env_var} to one (looked in: {', '.join(map(str, candidates))})"
    )


def _find_shared_library(name: str) -> Path | None:
    """A system shared library by soname (``ldconfig -p``, then the usual folders)."""
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    for line in listing.splitlines():
        if line.strip().startswith(name + " ") and "=>" in line:
            path = Path(line.split("=>", 1)[1].strip())
            if path.exists():
                return path
    for folder in (
        "/usr/lib/x86_64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ):
        path = Path(folder) / name
        if path.exists():
            return path
    return None


def resolve_classpath(cfg: StackConfig, pom: Path, out: Path) -> list[str]:
    """Resolve ``pom``'s runtime dependencies with Maven into ``out`` (cached by the pom's hash)."""
    stamp = out.with_suffix(".sha256")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        jars = [j for j in out.read_text().strip().split(os.pathsep) if j]
        if jars and all(os.path.exists(j) for j in jars):
            return jars
    mvn = os.environ.get("INFERWATCH_STACK_MVN") or _which("mvn")
    if mvn is None:
        _apt_install(["maven"], cfg.log_dir / "install.log")
        mvn = _which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) not found")
    out.parent.mkdir(parents=True, exist_ok=True)
    _say(f"resolving {pom.relative_to(STACK_PACKAGE_DIR.parent)} with Maven (first time downloads the jars)")
    _run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:build-classpath",
            f"-Dmdep.outputFile={out}",
            "-Dmdep.includeScope=runtime",
        ],
        log=cfg.log_dir / "maven.log",
        what="Maven dependency resolution",
    )
    stamp.write_text(digest + "\n")
    return [j for j in out.read_text().strip().split(os.pathsep) if j]


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


# --- Kafka ------------------------------------------------------------------------------------


class Kafka(Service):
    name = "kafka"
    ports = ("kafka", "kafka_controller")
    start_timeout = 90.0
    heap = os.environ.get("INFERWATCH_STACK_KAFKA_HEAP", "512m")

    def _properties(self, cfg: StackConfig) -> str:
        broker, controller = cfg.ports["kafka"], cfg.ports["kafka_controller"]
        data = self._dir(cfg) / "data"
        if cfg.secure:
            from stack._tls import SecureFiles

            files = SecureFiles(cfg.secure_dir)
            admin = files.credentials()["kafka_admin_password"]
            listeners = f"""listeners=SASL_SSL://{HOST}:{broker},CONTROLLER://{HOST}:{controller}
advertised.listeners=SASL_SSL://{HOST}:{broker},CONTROLLER://{HOST}:{controller}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
# secure mode: clients only over TLS with SCRAM-SHA-256 credentials (created at format time)
sasl.enabled.mechanisms=SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="{admin}";
ssl.keystore.type=PEM
ssl.keystore.location={files.keystore}
ssl.truststore.type=PEM
ssl.truststore.location={files.ca}
ssl.endpoint.identification.algorithm=https
ssl.client.auth=none
"""
        else:
            listeners = f"""listeners=PLAINTEXT://{HOST}:{broker},CONTROLLER://{HOST}:{controller}
advertised.listeners=PLAINTEXT://{HOST}:{broker},CONTROLLER://{HOST}:{controller}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
"""
        return f"""# generated by `python -m stack`; edits are overwritten on the next `up`
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers={HOST}:{controller}
{listeners}log.dirs={data}
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=2
"""

    def prepare(self, cfg: StackConfig) -> None:
        kdir = self._dir(cfg)
        self._java = find_java_home(17, "INFERWATCH_STACK_KAFKA_JAVA_HOME") / "bin" / "java"
        self._classpath = resolve_classpath(
            cfg, STACK_PACKAGE_DIR / "kafka" / "pom.xml", kdir / "classpath.txt"
        )
        scram: list[str] = []
        if cfg.secure:
            from stack._tls import ensure

            creds = ensure(cfg.secure_dir).credentials()
            scram = [
                "-S", f"SCRAM-SHA-256=[name=admin,password={creds['kafka_admin_password']}]",
                "-S", f"SCRAM-SHA-256=[name={creds['kafka_username']},password={creds['kafka_password']}]",
            ]
        props = kdir / "server.properties"
        _write_if_changed(props, self._properties(cfg))
        _write_if_changed(
            kdir / "log4j2.properties", (STACK_PACKAGE_DIR / "kafka" / "log4j2.properties").read_text()
        )
        formatted = kdir / "formatted-for"
        signature = f"controller={cfg.ports['kafka_controller']}\n" + ("secure=scram\n" if cfg.secure else "")
        if (kdir / "data" / "meta.properties").is_file():
            if formatted.is_file() and formatted.read_text() != signature:
                raise StackError(
                    f"Kafka's storage was formatted with {formatted.read_text().strip()}, now "
                    f"{signature.strip()}: run `python -m stack down --purge` to start afresh"
                )
            return
        base = self._java_command(cfg, xms="64m", xmx="256m")
        cluster_id = (
            _run(
                [*base, "kafka.tools.StorageTool", "random-uuid"],
                log=cfg.log_file("kafka"),
                what="Kafka random-uuid",
            )
            .strip()
            .splitlines()[-1]
        )
        _say(f"formatting Kafka storage (cluster id {cluster_id})")
        _run(
            [*base, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props), "--standalone", *scram],
            log=cfg.log_file("kafka"),
            what="Kafka storage format",
        )
        formatted.write_text(signature)

    def _java_command(self, cfg: StackConfig, *, xms: str, xmx: str) -> list[str]:
        kdir = self._dir(cfg)
        return [
            str(self._java),
            f"-Xms{xms}",
            f"-Xmx{xmx}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Djava.io.tmpdir={kdir}",
            f"-Dlog4j2.configurationFile={kdir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={cfg.log_dir}",
            "-cp",
            os.pathsep.join(self._classpath),
        ]

    def launch(self, cfg: StackConfig) -> Launch:
        kdir = self._dir(cfg)
        command = [
            *self._java_command(cfg, xms="256m", xmx=self.heap),
            "kafka.Kafka",
            str(kdir / "server.properties"),
        ]
        return Launch(command, kdir)

    def health(self, cfg: StackConfig) -> Health:
        if cfg.secure:
            from stack._tls import SecureFiles

            return kafka_health(HOST, cfg.ports["kafka"], cafile=SecureFiles(cfg.secure_dir).ca)
        return kafka_health(HOST, cfg.ports["kafka"])


# --- Elasticsearch ------------------------------------------------------------------------------


class Elasticsearch(Service):
    name = "elasticsearch"
    ports = ("elasticsearch", "elasticsearch_transport")
    start_timeout = 120.0
    heap = os.environ.get("INFERWATCH_STACK_ES_HEAP", "1g")
    # thread pools sized for this many cores (1 keeps a shared test machine usable; a private
    # bulk-load node may take 2)
    processors = os.environ.get("INFERWATCH_STACK_ES_PROCESSORS", "1")
    source_dir = STACK_PACKAGE_DIR / "elasticsearch"

    def _settings(self, cfg: StackConfig) -> str:
        home = self._dir(cfg)
        return f"""# generated by `python -m stack`; edits are overwritten on the next `up`
cluster.name: inferwatch-stack
node.name: inferwatch-stack-node
path.home: {home}
path.data: {home / "data"}
path.logs: {cfg.log_dir}
network.host: {HOST}
http.port: {cfg.ports["elasticsearch"]}
transport.port: {cfg.ports["elasticsearch_transport"]}
discovery.type: single-node
node.processors: {self.processors}
indices.breaker.total.use_real_memory: false
# the disk-based shard allocator would stop allocating on a nearly full disk; tests should not care
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
"""

    def prepare(self, cfg: StackConfig) -> None:
        home = self._dir(cfg)
        jdk = find_java_home(21, "INFERWATCH_STACK_ES_JAVA_HOME", need_javac=True)
        self._java = jdk / "bin" / "java"
        self._classpath = resolve_classpath(cfg, self.source_dir / "pom.xml", home / "classpath.txt")
        self._classes = home / "classes"
        sources = sorted((self.source_dir / "src").rglob("*.java"))
        digest = hashlib.sha256()
        for source in sources:
            digest.update(source.read_bytes())
        digest.update(os.pathsep.join(self._classpath).encode())
        digest.update(str(jdk).encode())
        stamp = home / "classes.sha256"
        if not (
            stamp.is_file() and stamp.read_text().strip() == digest.hexdigest() and self._classes.is_dir()
        ):
            _say("compiling the Elasticsearch launcher")
            shutil.rmtree(self._classes, ignore_errors=True)
            self._classes.mkdir(parents=True)
            _run(
                [
                    str(jdk / "bin" / "javac"),
                    "-nowarn",
                    "-d",
                    str(self._classes),
                    "-cp",
                    os.pathsep.join(self._classpath),
                    *map(str, sources),
                ],
                log=cfg.log_file("elasticsearch"),
                what="compiling the Elasticsearch launcher",
            )
            stamp.write_text(digest.hexdigest() + "\n")
        _write_if_changed(home / "config" / "elasticsearch.yml", self._settings(cfg))
        _write_if_changed(
            home / "config" / "log4j2.properties", (self.source_dir / "log4j2.properties").read_text()
        )
        (home / "tmp").mkdir(exist_ok=True)
        self._prepare_native(cfg, home / "native")

    def _prepare_native(self, cfg: StackConfig, native: Path) -> None:
        """Native libraries ES looks for in ``es.nativelibs.path``: the system's libzstd and a libvec stub.

        Without them the node runs, but with native access disabled, and indices using
        ``index.codec: best_compression`` (zstd) cannot start their shards. Best effort: a
        machine without libzstd or a C compiler gets the node without native access.
        """
        native.mkdir(parents=True, exist_ok=True)
        zstd = native / "libzstd.so"
        if not zstd.exists():
            system = _find_shared_library("libzstd.so.1")
            if system is not None:
                zstd.unlink(missing_ok=True)
                zstd.symlink_to(system)
        vec = native / "libvec.so"
        stub = self.source_dir / "native" / "vec_stub.c"
        cc = _which("cc", "gcc", "clang")
        if zstd.exists() and cc and (not vec.exists() or vec.stat().st_mtime < stub.stat().st_mtime):
            try:
                _run(
                    [cc, "-shared", "-fPIC", "-O2", "-o", str(vec), str(stub)],
                    log=cfg.log_file("elasticsearch"),
                    what="compiling the libvec stub",
                )
            except StackError as exc:
                _say(f"Elasticsearch will run without native access: {exc}")

    def launch(self, cfg: StackConfig) -> Launch:
        home = self._dir(cfg)
        command = [
            str(self._java),
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-Dfile.encoding=UTF-8",
            f"-Djava.io.tmpdir={home / 'tmp'}",
            # libzstd from the system and a libvec stub (see _prepare_native)
            f"-Des.nativelibs.path={home / 'native'}",
            "-Dio.netty.noUnsafe=true",
            "-Dio.netty.recycler.maxCapacityPerThread=0",
            "-Dlog4j2.disable.jmx=true",
            "-XX:-OmitStackTraceInFastThrow",
            "-XX:+ExitOnOutOfMemoryError",
            "--enable-native-access=ALL-UNNAMED",
            "--add-modules=jdk.incubator.vector",  # Lucene's vectorised code paths, as in a distribution
            "-cp",
            os.pathsep.join([str(self._classes), *self._classpath]),
            "inferwatch.stack.ElasticsearchLauncher",
            str(home / "config" / "elasticsearch.yml"),
        ]
        return Launch(command, home)

    def health(self, cfg: StackConfig) -> Health:
        return elasticsearch_health(cfg.url("elasticsearch"))


class ElasticsearchAuthProxy(Service):
    """Secure mode only: HTTPS with basic auth / API keys in front of the node (``_authproxy``)."""

    name = "esproxy"
    ports = ("elasticsearch_tls",)
    start_timeout = 180.0  # healthy only once the node behind it is: as long as Elasticsearch may take

    def prepare(self, cfg: StackConfig) -> None:
        from stack._tls import ensure

        ensure(cfg.secure_dir)
        self._dir(cfg).mkdir(parents=True, exist_ok=True)

    def launch(self, cfg: StackConfig) -> Launch:
        return Launch(
            [sys.executable, "-m", "stack._authproxy", "--port", str(cfg.ports["elasticsearch_tls"]),
             "--backend", f"{HOST}:{cfg.ports['elasticsearch']}", "--secure-dir", str(cfg.secure_dir)],
            STACK_PACKAGE_DIR.parent,
        )

    def health(self, cfg: StackConfig) -> Health:
        from stack._tls import SecureFiles

        files = SecureFiles(cfg.secure_dir)
        if not files.credentials_file.is_file():
            return Health(False, f"no credentials in {files.folder}")
        creds = files.credentials()
        return https_ready(f"https://{HOST}:{cfg.ports['elasticsearch_tls']}/_cluster/health", files.ca,
                           (creds["es_username"], creds["es_password"]))


# --- Prometheus, Alertmanager, Pushgateway (Debian packages) -----------------------------------

PROMETHEUS_PACKAGES = ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway")


class _PrometheusFamily(Service):
    """Prometheus, Alertmanager and the Pushgateway: Debian binaries answering ``/-/ready``."""

    def health(self, cfg: StackConfig) -> Health:
        return http_ready(f"{cfg.url(self.name)}/-/ready")


class Prometheus(_PrometheusFamily):
    name = "prometheus"
    ports = ("prometheus",)

    def _config(self, cfg: StackConfig) -> str:
        return f"""# generated by `python -m stack`; edits are overwritten on the next `up`
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels:
    stack: inferwatch-local

rule_files:
  - {ALERTS_DIR}/*.rules.yml

alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{HOST}:{cfg.ports["alertmanager"]}"]

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["{HOST}:{cfg.ports["prometheus"]}"]
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["{HOST}:{cfg.ports["pushgateway"]}"]
  # the pipeline and tests register their /metrics endpoints as JSON files here
  - job_name: inferwatch
    file_sd_configs:
      - files: ["{cfg.prometheus_targets_dir}/*.json"]
        refresh_interval: 1s
"""

    def prepare(self, cfg: StackConfig) -> None:
        self._binary = _require_any_prometheus_binary(cfg, ("prometheus",))
        pdir = self._dir(cfg)
        (pdir / "data").mkdir(parents=True, exist_ok=True)
        cfg.prometheus_targets_dir.mkdir(parents=True, exist_ok=True)
        _write_if_changed(pdir / "prometheus.yml", self._config(cfg))

    def launch(self, cfg: StackConfig) -> Launch:
        pdir = self._dir(cfg)
        return Launch(
            [
                self._binary,
                f"--config.file={pdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={pdir / 'data'}",
                "--storage.tsdb.retention.time=2d",
                f"--web.listen-address={HOST}:{cfg.ports['prometheus']}",
                "--web.enable-lifecycle",
                "--web.enable-admin-api",
                "--log.level=info",
            ],
            pdir,
        )


class Alertmanager(_PrometheusFamily):
    name = "alertmanager"
    ports = ("alertmanager",)

    def _config(self, cfg: StackConfig) -> str:
        return f"""# generated by `python -m stack`; edits are overwritten on the next `up`
# (the example for deployments is alerts/alertmanager.yml)
route:
  receiver: webhook
  group_by: [alertname, model]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://{HOST}:{cfg.ports["webhook"]}/alerts
        send_resolved: true
"""

    def prepare(self, cfg: StackConfig) -> None:
        self._binary = _require_any_prometheus_binary(cfg, ("prometheus-alertmanager", "alertmanager"))
        adir = self._dir(cfg)
        (adir / "data").mkdir(parents=True, exist_ok=True)
        _write_if_changed(adir / "alertmanager.yml", self._config(cfg))

    def launch(self, cfg: StackConfig) -> Launch:
        adir = self._dir(cfg)
        return Launch(
            [
                self._binary,
                f"--config.file={adir / 'alertmanager.yml'}",
                f"--storage.path={adir / 'data'}",
                f"--web.listen-address={HOST}:{cfg.ports['alertmanager']}",
                "--cluster.listen-address=",
                "--log.level=info",
            ],
            adir,
        )


class Pushgateway(_PrometheusFamily):
    name = "pushgateway"
    ports = ("pushgateway",)

    def prepare(self, cfg: StackConfig) -> None:
        self._binary = _require_any_prometheus_binary(cfg, ("prometheus-pushgateway", "pushgateway"))
        self._dir(cfg).mkdir(parents=True, exist_ok=True)

    def launch(self, cfg: StackConfig) -> Launch:
        gdir = self._dir(cfg)
        return Launch(
            [
                self._binary,
                f"--web.listen-address={HOST}:{cfg.ports['pushgateway']}",
                f"--persistence.file={gdir / 'metrics.store'}",
                "--persistence.interval=30s",
                "--web.enable-admin-api",
                "--log.level=info",
            ],
            gdir,
        )


def _require_any_prometheus_binary(cfg: StackConfig, names: tuple[str, ...]) -> str:
    """Find one of ``names``; when missing, install all three Prometheus packages at once."""
    found = _which(*names)
    if found is None:
        missing = [p for p in PROMETHEUS_PACKAGES if _which(p) is None]
        _apt_install(missing or list(PROMETHEUS_PACKAGES), cfg.log_dir / "install.log")
        found = _which(*names)
    if found is None:
        raise StackError(f"{names[0]} not found after apt-get install")
    return found


#: in start order: the slowest first, so the others come up while it boots
SERVICES: tuple[Service, ...] = (Elasticsearch(), Kafka(), Prometheus(), Alertmanager(), Pushgateway(),
                                 ElasticsearchAuthProxy())
SERVICE_NAMES = tuple(s.name for s in SERVICES)
#: services that exist only in secure mode
SECURE_ONLY = frozenset({"esproxy"})


def services_for(cfg: StackConfig) -> tuple[Service, ...]:
    """The services of this stack: the secure-mode proxy only when it is secure."""
    return tuple(s for s in SERVICES if cfg.secure or s.name not in SECURE_ONLY)
