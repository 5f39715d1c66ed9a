# ChronaPilot: two commands on a fresh clone.
#   make run   -> everything up (embedded Kafka + MongoDB, sandbox, the six services)
#   make test  -> lint + the whole suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# uv, pinned, in its own small environment (never in .venv, which `uv sync` keeps exact).
UV_VERSION := 0.13.9
UV := .uv/bin/uv
UV_STAMP := .uv/.uv-$(UV_VERSION)
# uv uses the machine's Python 3.11 (never a downloaded one) and its own index settings: PyPI.
export UV_PYTHON := $(PYTHON)
export UV_PROJECT_ENVIRONMENT := $(VENV)
PYPROJECTS := pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

.PHONY: install lock run test test-repeat soak lint format unit integration docs bench clean system-deps

$(UV_STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (ChronaPilot needs Python 3.11)"; exit 1; }
	test -x .uv/bin/python || $(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	touch $(UV_STAMP)

# Every workspace distribution (editable) and the dev group, exactly as uv.lock pins them,
# compiled to bytecode at install (as pip does) so that the first `make run` starts quickly.
$(STAMP): $(PYPROJECTS) uv.lock $(UV_STAMP)
	$(UV) sync --frozen --all-packages --group dev --compile-bytecode
	touch $(STAMP)

# Re-resolve after changing a pyproject.toml's requirements; commit the new uv.lock.
lock: $(UV_STAMP)
	$(UV) lock

install: $(STAMP)

run: $(STAMP)
	$(PY) -m chronapilot.devstack run

system-deps:
	@scripts/system-deps.sh

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy -p chronapilot.common
	$(VENV)/bin/mypy -p chronapilot.sandbox -p chronapilot.devstack -p chronapilot.api \
	    -p chronapilot.sync_worker -p chronapilot.webhook_gateway -p chronapilot.token_refresher \
	    -p chronapilot.webhook_dispatcher -p chronapilot.ops

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Three workers on two cores: much of the suite waits (outages, token lifetimes, renewals), so
# a third file overlaps those waits (about 10 min instead of 13 on two shared cores).
test: $(STAMP) system-deps lint
	$(PY) -m pytest -q -p no:cacheprovider --durations=20 -n 3 --dist loadfile --no-loadscope-reorder

# Flake finder: rerun chosen files N times, print failures per test.
#   make test-repeat N=5 FILES="tests/e2e/test_realtime.py tests/e2e/test_sync_flow.py"
N ?= 5
FILES ?= tests/e2e
test-repeat: $(STAMP) system-deps
	$(PY) scripts/test_repeat.py -n $(N) $(FILES)

# The long runs `make test` trims: 2,500-event mirrors per provider, several minutes of
# 60-second tokens, a longer run of 20-second subscriptions.
SOAK_ENV := CHRONAPILOT_TEST_MIRROR_EVENTS=2500 CHRONAPILOT_TEST_TOKEN_ACTIVITY_S=150 \
            CHRONAPILOT_TEST_RENEWAL_RUN_S=45
soak: $(STAMP) system-deps
	$(SOAK_ENV) $(PY) -m pytest -q -p no:cacheprovider --durations=10 -n 2 --dist loadfile --no-loadscope-reorder \
	    tests/e2e/test_sync_mirror.py tests/e2e/test_token_health.py tests/e2e/test_realtime.py

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

docs: $(STAMP)
	$(PY) -m chronapilot.common.bus.docs docs/events
	$(PY) -m chronapilot.devstack.settings_table README.md
	$(PY) -m chronapilot.api.error_codes docs/errors.md

clean:
	rm -rf $(VENV) .uv .run
