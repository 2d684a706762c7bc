from __future__ import annotations

import pytest

from inferwatch.errors import ConfigError
from inferwatch.wiring import load_config


def test_yaml_file_and_env_override(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("log:\n  backend: kafka\nkafka:\n  partitions: 6\nelasticsearch:\n  hosts: [http://a:9200]\n")
    cfg = load_config(f, env={"INFERWATCH_KAFKA_PARTITIONS": "12",
                              "INFERWATCH_ELASTICSEARCH_HOSTS": "http://x:1,http://y:2",
                              "INFERWATCH_DATA_DIR": "/tmp/x", "INFERWATCH_UNRELATED": "ignored"})
    assert cfg.log.backend == "kafka"
    assert cfg.kafka.partitions == 12
    assert cfg.elasticsearch.hosts == ["http://x:1", "http://y:2"]
    assert cfg.data_dir == "/tmp/x"


def test_toml_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[audit]\nbackend = "elasticsearch"\n[detect]\nwindow = {type = "time", seconds = 30}\n')
    cfg = load_config(f, env={})
    assert cfg.audit.backend == "elasticsearch"
    assert cfg.detect.window == {"type": "time", "seconds": 30}


def test_json_env_for_mappings():
    cfg = load_config(None, env={"INFERWATCH_DETECT_WINDOW": '{"type": "count", "size": 50}'})
    assert cfg.detect.window["size"] == 50


@pytest.mark.parametrize("text, needle", [
    ("log:\n  backend: redis\n", "log.backend"),
    ("kafka:\n  partitions: 0\n", "kafka.partitions"),
    ("colector:\n  port: 1\n", "colector"),
    ("- just\n- a list\n", "top level must be a mapping"),
    ("log: [unclosed\n", "cannot parse"),
])
def test_invalid_files_name_the_problem(tmp_path, text, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(f, env={})


def test_env_error_names_the_variable():
    with pytest.raises(ConfigError, match="INFERWATCH_KAFKA_PARTITIONS"):
        load_config(None, env={"INFERWATCH_KAFKA_PARTITIONS": "many"})
