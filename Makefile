# Two commands: `make demo` (the main job on the embedded digits data) and `make test`.
# Both create the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo family-tutorial test test-all lint format docs docs-tables bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m lswag_lightning.cli.demo

# your own family from a YAML file, end to end: sweep, collect, LIBRA, search, top picks vs random picks (docs/family.md)
family-tutorial: $(STAMP)
	$(PY) -m lswag_lightning.cli.family_tutorial --family examples/own_family/tiny_cnn.yaml --out runs/family_tutorial

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# the documentation site into site/; --strict: any warning (a broken link or anchor, a docstring griffe cannot
# read, a page missing from the nav) fails the build
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# the proxy table of docs/scoring.md, rendered from the registry (tests/test_docs.py fails when it is stale)
docs-tables: $(STAMP)
	$(PY) -c "from lswag_lightning.proxies.catalogue import proxy_table_markdown as t; \
	open('docs/generated/proxy_table.md', 'w').write(t())"

bench: $(STAMP)
	$(PY) benchmarks/scoring_cost.py

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache
