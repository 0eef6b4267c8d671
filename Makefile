# newsdedup: two commands for a newcomer (make demo, make test); the rest for daily work.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench serve screenshot clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# uv resolves Prefect's dependency tree in seconds where pip takes minutes; pip is the fallback.
	# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on CI) nothing else ever writes
	# .pyc files, and every start recompiles Prefect and SciPy: `import prefect` 4.3 s -> 1.8 s.
	($(BIN)/pip install -q uv && $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]') \
		|| $(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/newsdedup demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy flows extract dedupe warehouse

bench: $(STAMP)
	$(BIN)/python -m bench

# Starts `prefect server start` on 127.0.0.1:4200 unless one answers there (or at
# PREFECT_API_URL), then serves the schedule of ./newsdedup.toml, or of the bundled sample when
# there is no newsdedup.toml. Ctrl-C pauses the schedule and stops the server it started.
serve: $(STAMP)
	$(BIN)/newsdedup serve --start-server $(if $(wildcard newsdedup.toml),,--sample)

# Headless Chromium (Debian: apt-get install -y chromium) on the newest run at PREFECT_API_URL,
# or on a throwaway server that first runs the sample; writes docs/screenshots/*.png.
screenshot: $(STAMP)
	$(BIN)/python scripts/screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
