"""``python -m stack up|down|status|env|logs``: the local service stack, without Docker."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence

from stack import _proc
from stack._config import HOST, PORTS, StackConfig, load_config, port_env_var
from stack._health import Health
from stack._services import SERVICE_NAMES, Service, StackError, services_for

DESCRIPTION = """\
Run inferwatch's real services on 127.0.0.1 without Docker: Kafka (KRaft) and Elasticsearch
from Maven Central jars, Prometheus, Alertmanager and Pushgateway from Debian packages.
Data, logs and pid files live in the data directory (default <repo>/.stack, or
$INFERWATCH_STACK_DIR)."""

EPILOG = """\
examples:
  python -m stack up                 start everything (idempotent), wait until healthy
  eval "$(python -m stack env)"      export the INFERWATCH_* endpoints into this shell
  python -m stack status             health of each service (exit 1 when any is down)
  python -m stack logs kafka -n 100  the last 100 lines of Kafka's log
  python -m stack down --purge       stop what `up` started, then delete the data

ports (flag, or environment variable, else the ports of the last `up`, else the default):
""" + "\n".join(
    f"  --{name.replace('_', '-')}-port  ${port_env_var(name)}  (default {default}): {text}"
    for name, (default, text) in PORTS.items()
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the stack's data directory (default: $INFERWATCH_STACK_DIR or <repo>/.stack)",
    )
    group = parser.add_argument_group("ports")
    for name, (default, text) in PORTS.items():
        group.add_argument(
            f"--{name.replace('_', '-')}-port",
            dest=f"port_{name}",
            type=int,
            metavar="PORT",
            help=f"{text} (default {default}, env {port_env_var(name)})",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up",
        help="start the services (installs/downloads what is missing) and wait until healthy",
        description="Start every service not already running, then wait (bounded) until each is "
        "healthy. A service that is already running and healthy is left alone. Exits non-zero, "
        "printing the tail of the failing service's log, when one does not come up.",
    )
    _common(up)
    up.add_argument(
        "services",
        nargs="*",
        choices=[[], *SERVICE_NAMES],
        metavar="SERVICE",
        help=f"only these services (default all: {', '.join(SERVICE_NAMES)})",
    )
    up.add_argument(
        "--secure",
        action="store_true",
        default=None,
        help="secure mode (kept for this data directory): Kafka only over SASL_SSL with SCRAM "
        "credentials, Elasticsearch behind an HTTPS proxy that demands basic auth or an API key; "
        "certificates and random credentials under <datadir>/secure (also INFERWATCH_STACK_SECURE=1)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="override every service's start timeout",
    )

    down = commands.add_parser(
        "down",
        help="stop the processes `up` started (pid files)",
        description="Stop exactly the processes recorded in the pid files (SIGTERM, then SIGKILL "
        "after --timeout seconds).",
    )
    _common(down)
    down.add_argument(
        "services",
        nargs="*",
        choices=[[], *SERVICE_NAMES],
        metavar="SERVICE",
        help="only these services (default all)",
    )
    down.add_argument("--purge", action="store_true", help="also delete the services' data, logs and state")
    down.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds to wait after SIGTERM before SIGKILL (default 30)",
    )

    status = commands.add_parser(
        "status",
        help="health-check each service (exit 1 when any is down)",
        description="Health-check each service; exit 0 only when all are healthy.",
    )
    _common(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    env = commands.add_parser(
        "env",
        help="print `export INFERWATCH_...=...` lines for the endpoints",
        description="Print the INFERWATCH_* endpoint variables the pipeline configuration reads, "
        'one `export NAME=value` per line (use: eval "$(python -m stack env)").',
    )
    _common(env)
    env.add_argument("--json", action="store_true", help="print a JSON object instead")

    logs = commands.add_parser(
        "logs",
        help="print the tail of a service's log (or of all)",
        description="Print the last lines of one service's log file, or of each.",
    )
    _common(logs)
    logs.add_argument(
        "service",
        nargs="?",
        choices=[*SERVICE_NAMES, "install", "maven"],
        metavar="SERVICE",
        help=f"one of {', '.join(SERVICE_NAMES)}, install, maven (default: all services)",
    )
    logs.add_argument("-n", "--lines", type=int, default=40, help="number of lines (default 40)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C to stop)")
    return parser


def _config(args: argparse.Namespace) -> StackConfig:
    flags = {name: getattr(args, f"port_{name}", None) for name in PORTS}
    return load_config(args.data_dir, flags, secure=getattr(args, "secure", None))


def _selected(cfg: StackConfig, names: Sequence[str]) -> list[Service]:
    return [s for s in services_for(cfg) if not names or s.name in names]


def _fail(cfg: StackConfig, service: Service, reason: str, *, show_log: bool = True) -> None:
    print(f"stack: {service.name} FAILED: {reason}", file=sys.stderr)
    if not show_log:
        return
    log = cfg.log_file(service.name)
    text = _proc.tail(log, 40)
    if text:
        print(f"---- last lines of {log} ----\n{text}\n----", file=sys.stderr)


def cmd_up(args: argparse.Namespace) -> int:
    cfg = _config(args)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    services = _selected(cfg, args.services)
    failed = False
    waiting: dict[str, Service] = {}

    for service in services:
        pid = _proc.running_pid(cfg.pid_file(service.name))
        if pid is not None:
            print(f"stack: {service.name} already running (pid {pid})", file=sys.stderr)
            waiting[service.name] = service
            continue
        busy = [p for p in service.ports if _proc.port_open(HOST, cfg.ports[p])]
        if busy:
            ports = ", ".join(f"{HOST}:{cfg.ports[p]}" for p in busy)
            _fail(
                cfg,
                service,
                f"port {ports} is in use by a process this stack did not start "
                f"(stop it, or choose another port: --{busy[0].replace('_', '-')}-port)",
                show_log=False,
            )
            failed = True
            continue
        try:
            service.prepare(cfg)
            launch = service.launch(cfg)
        except StackError as exc:
            _fail(cfg, service, str(exc))
            failed = True
            continue
        record = _proc.spawn(
            launch.command,
            pid_file=cfg.pid_file(service.name),
            log_file=cfg.log_file(service.name),
            cwd=launch.cwd,
            env=launch.env,
        )
        print(
            f"stack: started {service.name} (pid {record.pid}), log {cfg.log_file(service.name)}",
            file=sys.stderr,
        )
        waiting[service.name] = service
    cfg.save()

    deadlines = {name: time.monotonic() + (args.timeout or s.start_timeout) for name, s in waiting.items()}
    last: dict[str, Health] = {}
    while waiting:
        for name, service in list(waiting.items()):
            health = service.health(cfg)
            last[name] = health
            if health.ok:
                print(f"stack: {name} healthy on {service.endpoint(cfg)} ({health.detail})", file=sys.stderr)
                del waiting[name]
            elif _proc.exited(cfg.pid_file(name)):
                _fail(cfg, service, f"the process exited before it became healthy ({health.detail})")
                failed = True
                del waiting[name]
            elif time.monotonic() > deadlines[name]:
                _fail(cfg, service, f"not healthy after {deadlines[name] - started:.0f}s ({health.detail})")
                failed = True
                del waiting[name]
        if waiting:
            time.sleep(0.5)

    elapsed = time.monotonic() - started
    if failed:
        print(
            f"stack: up FAILED after {elapsed:.1f}s (see above; `python -m stack logs SERVICE`)",
            file=sys.stderr,
        )
        return 1
    print(f'stack: all healthy in {elapsed:.1f}s; endpoints: eval "$(python -m stack env)"', file=sys.stderr)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cfg = _config(args)
    for service in reversed(_selected(cfg, args.services)):
        result = _proc.stop(cfg.pid_file(service.name), timeout=args.timeout)
        print(f"stack: {service.name}: {result}", file=sys.stderr)
    if args.purge:
        if args.services:
            for service in _selected(cfg, args.services):
                shutil.rmtree(cfg.service_dir(service.name), ignore_errors=True)
                cfg.log_file(service.name).unlink(missing_ok=True)
        else:
            # only what the stack creates: never the whole directory, which a user may have pointed anywhere
            for name in (*SERVICE_NAMES, "logs", "run", "secure"):
                shutil.rmtree(cfg.data_dir / name, ignore_errors=True)
            for name in ("stack.json", "stack.tmp", "stack.lock"):
                (cfg.data_dir / name).unlink(missing_ok=True)
            try:
                cfg.data_dir.rmdir()
            except OSError:
                pass
        print(f"stack: purged data under {cfg.data_dir}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _config(args)
    rows = []
    for service in services_for(cfg):
        pid = _proc.running_pid(cfg.pid_file(service.name))
        health = service.health(cfg)
        rows.append(
            {
                "service": service.name,
                "endpoint": service.endpoint(cfg),
                "pid": pid,
                "healthy": health.ok,
                "detail": health.detail if pid is not None or health.ok else f"not running ({health.detail})",
            }
        )
    all_ok = all(r["healthy"] for r in rows)
    if args.json:
        print(json.dumps({"healthy": all_ok, "data_dir": str(cfg.data_dir), "services": rows}, indent=2))
    else:
        for r in rows:
            state = "healthy" if r["healthy"] else "DOWN"
            owner = f"pid {r['pid']}" if r["pid"] is not None else ("external" if r["healthy"] else "-")
            print(f"{r['service']:<14} {state:<8} {r['endpoint']:<16} {owner:<12} {r['detail']}")
    return 0 if all_ok else 1


def cmd_env(args: argparse.Namespace) -> int:
    cfg = _config(args)
    endpoints = cfg.endpoints()
    if args.json:
        print(json.dumps(endpoints, indent=2))
    else:
        for key, value in endpoints.items():
            print(f"export {key}={value}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    cfg = _config(args)
    names = [args.service] if args.service else [s.name for s in services_for(cfg)]
    for name in names:
        path = cfg.log_file(name)
        if len(names) > 1:
            print(f"==> {path} <==")
        text = _proc.tail(path, args.lines)
        print(text if text else f"(no log at {path})")
    if args.follow and len(names) == 1:
        path = cfg.log_file(names[0])
        try:
            with open(path, "rb") as handle:
                handle.seek(0, 2)
                while True:
                    line = handle.readline()
                    if line:
                        sys.stdout.write(line.decode("utf-8", "replace"))
                        sys.stdout.flush()
                    else:
                        time.sleep(0.3)
        except (KeyboardInterrupt, OSError):
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env, "logs": cmd_logs}[
        args.command
    ]
    try:
        if args.command in ("up", "down"):
            # two test sessions (or engineers) starting the same stack take turns
            with _proc.exclusive(_config(args).data_dir / "stack.lock", args.command):
                return handler(args)
        return handler(args)
    except KeyboardInterrupt:
        return 130
