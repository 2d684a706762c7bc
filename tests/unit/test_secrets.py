"""Secrets from configuration or the environment never appear in output, logs or errors."""

from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import yaml
from click.testing import CliRunner

from inferwatch import masking
from inferwatch.cli import main
from inferwatch.config import load_config


def _planted() -> dict[str, str]:
    """Fresh secret values (unique per test run, so a hit cannot come from anything else)."""
    tag = uuid.uuid4().hex
    return {
        "INFERWATCH_KAFKA_SASL_PASSWORD": f"kafka-pw-{tag}",
        "INFERWATCH_ELASTICSEARCH_PASSWORD": f"es-pw-{tag}",
        "INFERWATCH_ELASTICSEARCH_API_KEY": f"es-key-{tag}",
        "INFERWATCH_ELASTICSEARCH_HOSTS": f"https://elastic:url-pw-{tag}@127.0.0.1:1",
        "INFERWATCH_ELASTICSEARCH_USERNAME": "elastic",
        "INFERWATCH_COLLECTOR_AUTH_TOKENS": f"tok-a-{tag},tok-b-{tag}",
        "INFERWATCH_REDACT_KEY": f"hmac-key-{tag}",
    }


def _forms(env: dict[str, str]) -> list[str]:
    """Every form a secret could leak in: verbatim, and the Basic-auth base64 of user:password."""
    tag = env["INFERWATCH_KAFKA_SASL_PASSWORD"].split("-")[-1]
    values = [f"kafka-pw-{tag}", f"es-pw-{tag}", f"es-key-{tag}", f"url-pw-{tag}", f"tok-a-{tag}", f"tok-b-{tag}",
              f"hmac-key-{tag}"]
    return [*values, base64.b64encode(f"elastic:es-pw-{tag}".encode()).decode(), tag]


def test_config_command_masks_every_secret_and_keeps_the_rest() -> None:
    env = _planted()
    result = CliRunner().invoke(main, ["config"], env=env)
    assert result.exit_code == 0, result.output
    for form in _forms(env):
        assert form not in result.output
    shown = yaml.safe_load(result.output)
    assert shown["kafka"]["sasl_password"] == masking.MASK
    assert shown["elasticsearch"]["password"] == masking.MASK
    assert shown["elasticsearch"]["api_key"] == masking.MASK
    assert shown["elasticsearch"]["hosts"] == ["https://elastic:****@127.0.0.1:1"]
    assert shown["collector"]["auth_tokens"] == [masking.MASK, masking.MASK]
    assert shown["redact"]["key"] == masking.MASK
    # what is not secret is printed as configured
    assert shown["elasticsearch"]["username"] == "elastic"
    # an unset secret stays visibly unset, not masked
    assert load_config(None, env={}).kafka.sasl_password is None
    assert CliRunner().invoke(main, ["config"], env={}).output.count(masking.MASK) == 0


def test_repr_of_the_configuration_hides_secrets() -> None:
    env = _planted()
    cfg = load_config(None, env=env)
    text = repr(cfg) + str(cfg)
    assert env["INFERWATCH_KAFKA_SASL_PASSWORD"] not in text
    assert env["INFERWATCH_ELASTICSEARCH_API_KEY"] not in text


def test_log_records_and_their_exceptions_are_masked() -> None:
    env = _planted()
    load_config(None, env=env)  # registers the secrets
    masking.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(f"test-secrets-{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        pw = env["INFERWATCH_ELASTICSEARCH_PASSWORD"]
        logger.warning("connecting with %s and %r", pw, {"api_key": env["INFERWATCH_ELASTICSEARCH_API_KEY"]})
        try:
            raise RuntimeError(f"auth failed: {env['INFERWATCH_KAFKA_SASL_PASSWORD']}")
        except RuntimeError:
            logger.exception("the broker said no")
        header = base64.b64encode(f"elastic:{pw}".encode()).decode()
        logger.error("sent Authorization: Basic %s to %s", header, env["INFERWATCH_ELASTICSEARCH_HOSTS"])
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "the broker said no" in out and "RuntimeError: auth failed: ****" in out
    for form in _forms(env):
        assert form not in out, form


def test_uncaught_thread_exceptions_are_masked(capfd) -> None:
    env = _planted()
    load_config(None, env=env)
    masking.install()

    def boom() -> None:
        raise ValueError(f"bad key {env['INFERWATCH_ELASTICSEARCH_API_KEY']}")

    t = threading.Thread(target=boom, name="leaky")
    t.start()
    t.join()
    err = capfd.readouterr().err
    assert "ValueError: bad key ****" in err
    assert env["INFERWATCH_ELASTICSEARCH_API_KEY"] not in err


def test_cli_errors_and_logs_of_failing_commands_are_masked(tmp_path: Path) -> None:
    """Real commands against unreachable services with credentials: nothing they print holds a secret."""
    env = {**os.environ, **_planted(),
           "INFERWATCH_AUDIT_BACKEND": "elasticsearch", "INFERWATCH_ELASTICSEARCH_REQUEST_TIMEOUT": "1",
           "INFERWATCH_ELASTICSEARCH_MAX_RETRIES": "0", "INFERWATCH_DATA_DIR": str(tmp_path),
           "INFERWATCH_LOG_LEVEL": "DEBUG"}
    out = subprocess.run([sys.executable, "-m", "inferwatch.cli", "search", "--model", "m"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Error" in text  # it did fail, and said so
    for form in _forms(env):
        assert form not in text, (form, text[-2000:])
