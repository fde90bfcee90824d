# `make demo` runs the main job, `make test` the default test suite.
# Both create .venv when it is missing and (re)install when setup.cfg changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps norse==1.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurosim demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks.microcircuit_steps

clean:
	rm -rf $(VENV) runs build
