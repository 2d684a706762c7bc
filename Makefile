# inferwatch — two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint typecheck unit integration stack-up stack-down bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,alibi]'
	touch $(STAMP)

venv: $(STAMP)

## make demo: set up, then run the main job on the embedded default (no servers)
demo: $(STAMP)
	$(VENV)/bin/inferwatch demo --data-dir inferwatch-demo

## make test: set up everything (venv, packages, the service stack) and run every test
test: $(STAMP)
	$(PY) -m stack up
	@set -a; eval "$$($(PY) -m stack env)"; set +a; \
	  $(PY) -m ruff check inferwatch collectors detectors sinks stack tests bench && \
	  $(PY) -m mypy inferwatch collectors detectors sinks && \
	  $(PY) -m pytest -p no:cacheprovider; rc=$$?; \
	  $(PY) -m stack down; exit $$rc

unit: $(STAMP)
	$(PY) -m pytest -m "not integration"

integration: $(STAMP)
	$(PY) -m stack up
	@set -a; eval "$$($(PY) -m stack env)"; set +a; $(PY) -m pytest -m integration

lint: $(STAMP)
	$(PY) -m ruff check inferwatch collectors detectors sinks stack tests bench

typecheck: $(STAMP)
	$(PY) -m mypy inferwatch collectors detectors sinks

stack-up:
	$(PYTHON) -m stack up

stack-down:
	$(PYTHON) -m stack down

bench: $(STAMP)
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) inferwatch-demo .pytest_cache .mypy_cache .ruff_cache
