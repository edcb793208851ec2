# homing developer tasks. Run from the repository root (or `make -C path/to/repo`).
# Everything Python runs from .venv; nothing here touches a shared Redis:
# tests start private servers, demo/bench go through scripts/with-redis.sh.

PY := .venv/bin/python
# Lives inside .venv so deleting the venv also forgets it was installed.
VENV_STAMP := .venv/.homing-install.stamp
DEMO_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv redis-check build lint test test-py test-js test-erl demo bench conformance clean distclean \
  faults faults-quick dashboard-screenshots

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

venv: $(VENV_STAMP) ## create .venv and install ./python[test,hiredis,web] (editable)

# Re-runs only when python/pyproject.toml changes. The pip check also repairs
# a .venv left without pip by a python3 that lacked ensurepip.
$(VENV_STAMP): python/pyproject.toml
	@$(PY) -m pip --version >/dev/null 2>&1 || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e './python[test,hiredis,web]'
	touch $@

redis-check: ## make sure redis-server is installed (apt-get installs it when root)
	@if command -v redis-server >/dev/null 2>&1; then \
	  echo "redis-server: $$(redis-server --version)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "redis-server not found; installing it with apt-get"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
	else \
	  echo "redis-server not found on PATH. Install Redis 7, e.g.:" >&2; \
	  echo "  sudo apt-get install redis-server   (Debian/Ubuntu)" >&2; \
	  echo "  brew install redis                  (macOS)" >&2; \
	  exit 1; \
	fi

build: ## flatten lua/ scripts into the manifest and regenerate the error classes
	python3 lua/build.py --out python/homing/manifest.json --out javascript/manifest.json \
	  --python-errors python/homing/errors.py --js-errors javascript/src
	python3 conformance/build.py
	python3 erlang/tools/manifest_terms.py

lint: venv ## ruff check (the package, bench/, lua/, conformance/ and scripts/)
	.venv/bin/ruff check python bench lua conformance scripts

test: test-py test-js test-erl faults-quick ## lint + all tests + the fault suite's quick tier

test-py: venv redis-check lint ## lint + Python tests
	$(PY) -m pytest python/tests -q

# --- JavaScript tests (owned by the JS client) ---
# npm ci installs exactly the committed javascript/package-lock.json, and only
# when that file changed since the last install: the lock's sha256 is kept in
# node_modules/.homing-lock.sha256 (deleting node_modules forgets it). The
# tests report tersely (test/reporter.js: a dot per test, failures in full, one
# summary line); `cd javascript && npm test` shows every test.
test-js: redis-check ## JavaScript tests (npm ci if the lock changed + node --test; skipped without node/npm)
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || \
	    { echo "test-js: Node.js 20+ is required, found $$(node --version)" >&2; exit 1; }; \
	  cd javascript || exit 1; \
	  lock=$$(node -p 'require("crypto").createHash("sha256").update(require("fs").readFileSync("package-lock.json")).digest("hex")') \
	    || exit 1; \
	  if [ "$$(cat node_modules/.homing-lock.sha256 2>/dev/null)" != "$$lock" ]; then \
	    echo "test-js: npm ci (package-lock.json is new or changed since the last install)"; \
	    npm ci --no-audit --no-fund --loglevel=error >/dev/null || exit 1; \
	    printf '%s' "$$lock" > node_modules/.homing-lock.sha256; \
	  fi; \
	  timeout 1500 npm run --silent test:terse; rc=$$?; \
	  if [ $$rc = 124 ]; then echo "test-js: still running after 25 min: a test file did not exit (an open handle?)" >&2; fi; \
	  exit $$rc; \
	else \
	  echo "test-js: node/npm not found, skipping the JavaScript tests (install Node.js 20+)"; \
	fi

# --- Erlang tests (the Erlang client, erlang/: OTP 25 and eredis from Debian) ---
# The interop tests drive Python through .venv, hence venv.
test-erl: venv redis-check ## Erlang client: EUnit (skipped without erlc)
	@if command -v erlc >/dev/null 2>&1; then \
	  $(MAKE) -C erlang test; \
	else \
	  echo "test-erl: erlc not found, skipping the Erlang tests (apt-get install erlang-nox erlang-dev erlang-eunit erlang-redis-client erlang-proper)"; \
	fi

# --- The fault suite (faults/, docs/faults.md) ---
# Private redis-servers, workers and daemons as processes, a partitioning proxy; every
# event classified. FAULTS_ARGS passes options, e.g. FAULTS_ARGS="--only partition --keep"
# or FAULTS_ARGS=--write-docs (regenerate the table in docs/guarantees.md afterwards).
FAULTS_ARGS ?=

faults: venv redis-check ## the fault suite, full tier (< 20 min); FAULTS_ARGS=...
	.venv/bin/ruff check faults
	$(PY) -m faults $(FAULTS_ARGS)

faults-quick: venv redis-check ## the fault suite's quick tier (< 3 min; part of make test)
	.venv/bin/ruff check faults
	$(PY) -m faults --tier quick $(FAULTS_ARGS)

demo: venv redis-check ## run the demo (private Redis unless HOMING_REDIS_URL is set; DEMO_ARGS=...)
	scripts/with-redis.sh $(PY) -m homing demo $(DEMO_ARGS)

# With Node.js 20+, the JavaScript rows (bench/js/run.mjs: the JS client and BullMQ) run
# too; npm ci installs the JS client's dependencies and bench/js's own (BullMQ, which the
# homing package does not depend on) from their committed lock files.
bench: venv redis-check ## run bench/run.py (rates, memory, timers, idle cost) on private Redis servers
	@js=--no-js; \
	if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && \
	  node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then \
	  npm ci --prefix javascript --no-audit --no-fund || exit 1; \
	  npm ci --prefix bench/js --no-audit --no-fund || exit 1; \
	  js=; \
	else \
	  echo "bench: Node.js 20+ not found: the JavaScript rows are skipped" >&2; \
	fi; \
	echo "scripts/with-redis.sh $(PY) bench/run.py $$js"; \
	scripts/with-redis.sh $(PY) bench/run.py $$js

# Refreshes the vectors' packaged copy, then runs `homing conformance` (as python -m
# homing.conformance) against a private Redis 7 and a private 3-master Cluster.
conformance: venv redis-check ## run the conformance suite on private standalone and Cluster servers
	python3 conformance/build.py
	$(PY) conformance/run_local.py

clean: ## remove caches and build output (keeps .venv)
	find . \( -path ./.venv -o -path ./.git -o -name node_modules \) -prune -o -type d \( -name __pycache__ -o -name .pytest_cache \
	  -o -name .ruff_cache -o -name .hypothesis -o -name '*.egg-info' \) -print -exec rm -rf {} +
	rm -rf build dist python/build python/dist $(VENV_STAMP)

# The images of docs/dashboard.md: the browser test of every view, saving into docs/img
# instead of a temporary directory. Not part of `make test`, which must not rewrite files.
dashboard-screenshots: venv redis-check ## re-make docs/img/dashboard-*.png (headless Chromium)
	HOMING_WRITE_SCREENSHOTS=1 $(PY) -m pytest python/tests/test_dashboard.py -q \
	  -k test_pages_show_the_numbers_in_redis

distclean: clean ## clean, and also remove .venv and javascript/node_modules
	rm -rf .venv javascript/node_modules
