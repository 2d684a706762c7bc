# inferwatch — two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CORE := $(VENV)/.installed-core
STAMP := $(VENV)/.installed-full

.PHONY: chromium demo test venv servers-venv lint typecheck unit integration faults stack-up stack-down bench clean nannyml-venv evidently-venv mutation seed-sweep

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# the core alone: what `make demo` needs
$(CORE): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e .
	touch $(CORE)

# everything the tests need: dev tools, alibi-detect and torch (the reference implementations),
# and the real client libraries (pyproject's `clients` extra; three of them without their
# dependencies, see tests/realclients.py; seldon-core also ships a top-level `tests` package
# that would shadow ours, so it is removed)
CLIENTS_NO_DEPS := mlserver==1.7.1 seldon-core==1.18.2 kserve==0.21.0
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[dev,alibi,torch,clients,proxy,confluent]'
	$(PIP) install -q --no-deps $(CLIENTS_NO_DEPS)
	rm -rf "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tests"
	touch $(STAMP) $(CORE)

venv: $(STAMP)

# NannyML, the reference our performance estimation (CBPE) is checked against, in a venv of its
# own (it pulls xgboost, lightgbm and cloud SDKs we do not want in the main one); the test runs
# it in a subprocess on the same data files
NANNYML_VENV ?= .venv-nannyml
NANNYML_STAMP := $(NANNYML_VENV)/.installed
$(NANNYML_STAMP):
	$(PYTHON) -m venv $(NANNYML_VENV)
	$(NANNYML_VENV)/bin/pip install -q --upgrade pip
	$(NANNYML_VENV)/bin/pip install -q 'nannyml==0.13.1' statsmodels 'numpy<2' 'pandas<3'  # nannyml imports statsmodels without requiring it
	touch $(NANNYML_STAMP)

nannyml-venv: $(NANNYML_STAMP)

# Evidently 0.7, what bench/bench_report_scale.py compares `inferwatch report` with on the same
# files (DataDriftPreset), in a venv of its own: it pulls litestar, plotly, nltk and telemetry
# packages the main venv has no use for (pip --dry-run: it would not move numpy/pandas, but adds ~30)
EVIDENTLY_VENV ?= .venv-evidently
EVIDENTLY_STAMP := $(EVIDENTLY_VENV)/.installed
$(EVIDENTLY_STAMP):
	$(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/pip install -q --upgrade pip
	$(EVIDENTLY_VENV)/bin/pip install -q 'evidently==0.7.23' 'numpy<2' 'pandas<3' 'pyarrow<21'
	touch $(EVIDENTLY_STAMP)

evidently-venv: $(EVIDENTLY_STAMP)

# real model servers the proxy tests run as subprocesses, each in a venv of its own: their pins
# (starlette, protobuf, cloudevents 1.x, grpcio) would break the main venv's
MLSERVER_VENV := .venv-mlserver
KSERVE_VENV := .venv-kserve
$(MLSERVER_VENV)/.installed:
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install -q 'mlserver==1.7.1' 'mlserver-sklearn==1.7.1'
	touch $@
$(KSERVE_VENV)/.installed:
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/pip install -q 'kserve==0.21.0' scikit-learn
	touch $@
servers-venv: $(MLSERVER_VENV)/.installed $(KSERVE_VENV)/.installed

# headless Chromium for the report page test (tests/unit/test_report_browser.py) and openssl for
# the TLS endpoint test (tests/unit/test_secure_endpoints_process.py): Debian packages, installed as
# the stack installs its Debian packages (as root, or with sudo)
CHROMIUM_STAMP := $(VENV)/.installed-chromium
$(CHROMIUM_STAMP): | $(VENV)/bin/python
	{ command -v chromium && command -v openssl; } >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q --no-install-recommends chromium openssl || \
	  { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends chromium openssl; }; }
	touch $@

chromium: $(CHROMIUM_STAMP)

## make demo: set up, then run the main job on the embedded default (no servers)
demo: $(CORE)
	$(VENV)/bin/inferwatch demo --data-dir inferwatch-demo

## make test: set up everything (venv, packages, the service stack) and run every test
test: $(STAMP) $(NANNYML_STAMP) $(CHROMIUM_STAMP) servers-venv
	$(PY) -m stack up
	@set -a; eval "$$($(PY) -m stack env)"; set +a; \
	  $(PY) -m ruff check inferwatch collectors detectors sinks dashboards stack tests bench && \
	  $(PY) -m mypy inferwatch collectors detectors sinks dashboards && \
	  INFERWATCH_FAULTS_LONG=$${INFERWATCH_FAULTS_LONG:-1} \
	  INFERWATCH_NANNYML_PYTHON=$(NANNYML_VENV)/bin/python $(PY) -m pytest -p no:cacheprovider; rc=$$?; \
	  $(PY) -m stack down; exit $$rc

## make mutation: mutmut over the modules where a silent bug costs most ([tool.mutmut] in
## pyproject.toml: record and audit-document builders, codecs, the collectors' pairing, log offsets
## and state, windows, corrections, distance detectors, the batching sink) against the tests
## that own them; slow (hours on two cores), not part of `make test`. MUTATION_JOBS sets the
## parallelism. MODULES='inferwatch.record. detectors.runtime.windows.' runs those modules' mutants
## that are not killed yet (all of them on a first run), keeping every other result;
## MUTANTS='inferwatch.record*' reruns the named mutants (mutmut's patterns). Without either, a
## full run from scratch. Writes bench/MUTATION.md (survivors' reasons: bench/mutation_survivors.txt);
## a module none of whose mutants ran in this mutants/ keeps its row from the MUTATION.md it replaces,
## marked "earlier run" (mutants/ is per machine: a fresh one knows only what ran on it).
MUTATION_JOBS ?= 2
MUTANTS ?=
MODULES ?=
# node-id prefixes left out of the run (pytest --deselect, passed in PYTEST_ADDOPTS so the
# results already recorded stay valid): MUTATION_DESELECT='tests/unit/test_codecs_properties.py'
# leaves the codec fuzzers (minutes per surviving codec mutant) out; a score without them is a
# lower bound of the score with them. bench/mutation_order.py runs each mutant's tests fastest first
MUTATION_DESELECT ?=
mutation: $(STAMP)
	$(if $(MUTANTS)$(MODULES),,rm -rf mutants)
	@names='$(MUTANTS)'; \
	if [ -n '$(MODULES)' ]; then \
	  if [ -d mutants ]; then \
	    names=$$($(VENV)/bin/mutmut results --all true | $(PY) bench/mutation_report.py --todo $(MODULES)); \
	  else names=$$(for m in $(MODULES); do printf '%s* ' "$$m"; done); fi; \
	  if [ -z "$$names" ]; then echo "nothing left to run in $(MODULES)"; fi; \
	fi; \
	if [ -z '$(MODULES)' ] || [ -n "$$names" ]; then \
	  env -u PYTHONPATH CI= PYTEST_ADDOPTS='-p bench.mutation_order $(addprefix --deselect ,$(MUTATION_DESELECT))' \
	    nice $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $$names; fi; \
	$(VENV)/bin/mutmut results --all true | $(PY) bench/mutation_report.py --markdown bench/MUTATION.md

## make seed-sweep: every seeded statistical test across 20+ seeds (slow; not part of `make test`)
seed-sweep: $(STAMP)
	nice $(PY) bench/seed_sweep.py --seeds 20

unit: $(STAMP) $(NANNYML_STAMP) $(CHROMIUM_STAMP)
	INFERWATCH_NANNYML_PYTHON=$(NANNYML_VENV)/bin/python $(PY) -m pytest -m "not integration"

integration: $(STAMP) servers-venv
	$(PY) -m stack up
	@set -a; eval "$$($(PY) -m stack env)"; set +a; $(PY) -m pytest -m integration

## make faults: the fault suite (tests/faults) alone, on its own stack instance, with the
## 5-minute outages; prints the table and writes fault-table.txt. `make test` runs the same suite
## with the 5-minute outages too (about 13 of CI's 90 minutes; INFERWATCH_FAULTS_LONG=0 leaves
## them out of a local run)
faults: $(STAMP)
	INFERWATCH_FAULTS_LONG=1 INFERWATCH_FAULT_TABLE=fault-table.txt $(PY) -m pytest -p no:cacheprovider tests/faults

lint: $(STAMP)
	$(PY) -m ruff check inferwatch collectors detectors sinks dashboards stack tests bench

typecheck: $(STAMP)
	$(PY) -m mypy inferwatch collectors detectors sinks dashboards

stack-up:
	$(PYTHON) -m stack up

stack-down:
	$(PYTHON) -m stack down

bench: $(STAMP)
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) $(NANNYML_VENV) $(MLSERVER_VENV) $(KSERVE_VENV) inferwatch-demo .pytest_cache .mypy_cache .ruff_cache
