# The README's two entry points. Each does its own set-up, idempotently:
#   make demo   -> the embedded platform with the demo archive
#   make test   -> the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo test test-python test-js test-images lock bench bench-hub lint clean schema

install: $(VENV)/.installed node_modules/.installed

$(BIN)/pip:
	$(PYTHON) -m venv $(VENV)

# Hub and user side share one environment in embedded mode (the images split them).
$(VENV)/.installed: $(BIN)/pip requirements-dev.txt pyproject.toml hub/pyproject.toml \
		extension/pyproject.toml extension/package.json extension/package-lock.json
	$(BIN)/pip install -q -r requirements-dev.txt -e 'hub[demo]' -e extension
	$(BIN)/jupyter labextension develop --overwrite extension
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

demo: install
	$(BIN)/dandihub up --demo $(DEMO_ARGS)

test: install
	scripts/ensure-chromium
	$(MAKE) test-js
	$(MAKE) test-python

test-python:
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-js:
	cd extension && npm test

# The chart's values.schema.json, its Settings part generated from dandihub.config.Settings.
schema: install
	$(BIN)/python -m dandihub.config schema helm/dandihub/values.schema.json

lint: install
	$(BIN)/ruff check hub extension/dandilab tests benchmarks

# The library's measurements (streaming vs remfile/fsspec, widgets vs nwbwidgets): < 10 min.
bench: install
	-@$(MAKE) --no-print-directory $(NWBW)/bin/python || echo "nwbwidgets did not install: the widget benchmark runs without it"
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/widgets.py $$(test -x $(NWBW)/bin/python && echo --nwbwidgets-python $(NWBW)/bin/python)

# nwbwidgets (pynwb<3) in its own venv, for the widget benchmark's comparison. The file is a
# complete frozen set installed as is (--no-deps): nwbwidgets' own requirements cannot be
# resolved together any more (it needs dandi and pynwb<3; dandi 0.81 needs pynwb>=3.1).
NWBW := .cache/nwbwidgets
$(NWBW)/bin/python: benchmarks/nwbwidgets-requirements.txt
	rm -rf $(NWBW)
	$(PYTHON) -m venv $(NWBW)
	$(NWBW)/bin/pip install --quiet --disable-pip-version-check --no-deps -r $<

# The hub under 1 000 simulated users (~17 min on 2 cores; HUB_LOAD_ARGS="--users 200": 2 min).
bench-hub: install
	$(BIN)/python benchmarks/hub_load.py $(HUB_LOAD_ARGS)

clean:
	rm -rf $(VENV) node_modules extension/node_modules extension/lib extension/dandilab/labextension

# The user image's Python layer, locked with hashes (images/user/requirements.in -> .txt).
lock:
	images/lock

# That locked environment installed in a fresh venv, pip check, imports (~4 min; CI runs it).
test-images: install
	DANDIHUB_TEST_IMAGES=1 $(BIN)/python -m pytest tests/test_images.py $(PYTEST_ARGS)
