# The two commands a new user types: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.s2c-installed
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export AWS_REQUEST_CHECKSUM_CALCULATION := when_required

.PHONY: venv demo test lint clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c requirements/constraints.txt torch
	$(PIP) install -q --no-deps compressai==1.2.8
	$(PIP) install -q -c requirements/constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m s2c_pipeline demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/codec_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
