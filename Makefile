# ChronaPilot: two commands on a fresh clone.
#   make run   -> everything up (embedded Kafka + MongoDB, sandbox, four services)
#   make test  -> lint + the whole suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROJECTS := libs/common libs/sandbox libs/devstack services/api services/sync-worker services/webhook-dispatcher services/ops \
            services/webhook-gateway services/token-refresher
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PROJECTS))

.PHONY: install run test test-repeat soak lint format unit integration docs bench clean system-deps

$(STAMP): $(PYPROJECTS)
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (ChronaPilot needs Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet $(addprefix -e ,$(PROJECTS)) -e .
	touch $(STAMP)

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
	rm -rf $(VENV) .run
