"""Static checks of docker-compose.yml (no Docker, no running stack needed).

Every image pinned, every mounted host path present in the repo, the inferwatch roles run the
CLI's real ``run --role`` values, published ports agree with ``python -m stack``'s defaults,
and the versions agree with what stack/ runs locally.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ROLES = {"collector", "audit", "detect"}

#: compose service -> the `python -m stack` port its host port must equal
STACK_PORT_OF_SERVICE = {
    "kafka": "kafka",
    "elasticsearch": "elasticsearch",
    "prometheus": "prometheus",
    "pushgateway": "pushgateway",
    "alertmanager": "alertmanager",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _role_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "build" in s}


def _published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each short-syntax port mapping."""
    out = []
    for spec in service.get("ports", []):
        parts = str(spec).split(":")
        assert len(parts) == 3, f"bind published ports to an address (127.0.0.1:HOST:CONTAINER): {spec}"
        out.append((parts[0], int(parts[1]), int(parts[2].split("/")[0])))
    return out


def _pom_property(pom: Path, name: str) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find(f"m:properties/m:{name}", ns)
    assert node is not None and node.text, f"{pom} has no <{name}>"
    return node.text.strip()


def test_every_image_is_pinned_to_an_exact_version(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image (services built from the Dockerfile name their image too)"
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and "@" not in repo, f"{name}: {image}"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+([-.][\w.-]+)?", tag), f"{name}: {image} is not an exact version"


def test_dockerfile_base_image_is_pinned() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert bases
    for base in bases:
        assert re.search(r":\d+\.\d+\.\d+", base), f"Dockerfile FROM {base} is not pinned"
    for source in re.findall(r"^COPY\s+(\S+)\s", dockerfile, re.MULTILINE):
        assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repo"


def test_inferwatch_image_matches_project_version(services: dict[str, dict[str, Any]]) -> None:
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for name, service in _role_services(services).items():
        assert service["image"] == f"inferwatch:{version}", name
        assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name


def test_every_mounted_host_path_exists(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert source.startswith("./"), f"{name}: mount {source} from inside the repo (./...)"
                assert (REPO / source).exists(), f"{name}: mounted {source} is missing from the repo"
            else:
                assert source in named, f"{name}: named volume {source} is not declared"


def test_roles_run_the_cli_with_known_roles(services: dict[str, dict[str, Any]]) -> None:
    roles = _role_services(services)
    seen = []
    for name, service in roles.items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: give the command as a list"
        assert command[:2] == ["inferwatch", "run"], f"{name}: {command}"
        role_values = [command[i + 1] for i, arg in enumerate(command) if arg == "--role"]
        assert role_values and set(role_values) <= ROLES, f"{name}: --role {role_values}"
        seen.extend(role_values)
        config = command[command.index("--config") + 1]
        targets = [v.split(":")[1] for v in service.get("volumes", []) if isinstance(v, str)]
        assert config in targets, f"{name}: --config {config} is not a mounted file"
    assert sorted(seen) == sorted(ROLES), f"each role once: {seen}"


def test_ports_agree_with_the_local_stack(services: dict[str, dict[str, Any]]) -> None:
    from stack._config import PORTS

    for service_name, port_name in STACK_PORT_OF_SERVICE.items():
        published = _published(services[service_name])
        assert published, f"{service_name} publishes no port"
        host_ports = {host_port for _ip, host_port, _container in published}
        assert PORTS[port_name][0] in host_ports, (
            f"{service_name}: {host_ports} vs stack {PORTS[port_name][0]}"
        )
    for name, service in services.items():
        for ip, _host, _container in _published(service):
            assert ip == "127.0.0.1", f"{name} publishes on {ip}: bind to 127.0.0.1"


def test_versions_agree_with_the_local_stack(services: dict[str, dict[str, Any]]) -> None:
    kafka = _pom_property(REPO / "stack" / "kafka" / "pom.xml", "kafka.version")
    elasticsearch = _pom_property(REPO / "stack" / "elasticsearch" / "pom.xml", "elasticsearch.version")
    assert services["kafka"]["image"].endswith(f":{kafka}")
    assert services["elasticsearch"]["image"].endswith(f":{elasticsearch}")
    assert services["kibana"]["image"].endswith(f":{elasticsearch}")


def test_prometheus_config_scrapes_the_roles_and_loads_the_rules(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load((REPO / "stack" / "compose" / "prometheus.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in services["prometheus"]["volumes"] if v.startswith("./"))
    assert mounts["./alerts"] == "/etc/prometheus/alerts"
    assert config["rule_files"] == ["/etc/prometheus/alerts/*.rules.yml"]
    assert list((REPO / "alerts").glob("*.rules.yml")), "no rules to load"
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    hosts = {t.split(":")[0] for sc in jobs["inferwatch"]["static_configs"] for t in sc["targets"]}
    assert hosts == set(_role_services(services))


def test_grafana_is_provisioned_from_dashboards(services: dict[str, dict[str, Any]]) -> None:
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("./"))
    datasources = yaml.safe_load(
        (REPO / "dashboards/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasources["datasources"][0]["type"] == "prometheus"
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (REPO / "dashboards/grafana/provisioning/dashboards/inferwatch.yml").read_text()
    )
    path = providers["providers"][0]["options"]["path"]
    assert mounts["./dashboards/grafana/json"] == path


def test_the_cli_has_the_run_roles_compose_uses() -> None:
    import click

    import inferwatch.cli as cli

    assert isinstance(cli.main, click.Group)
    run = cli.main.commands["run"]
    options = {opt: param for param in run.params for opt in getattr(param, "opts", [])}
    assert "--config" in options
    role = options["--role"]
    assert isinstance(role.type, click.Choice)
    assert set(role.type.choices) >= ROLES
