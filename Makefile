# Two commands do everything: `make run` (the experiment suite, quick profile,
# writing reports/) and `make test` (the test suite). Both create .venv when it
# is missing and are safe to run twice.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# `make full WORKERS=4`: the units of work on a local Dask cluster of 4 processes (README, "Beyond one machine")
WORKERS ?= 1
STAMP  := $(VENV)/.installed

.PHONY: run test full bench gradcheck data clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

data: $(STAMP)
	$(PY) -m experiments data

run: data
	$(PY) -m experiments run all --profile quick

full: data
	$(PY) -m experiments run all --profile full --workers $(WORKERS)

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m experiments bench

gradcheck: $(STAMP)
	$(PY) -m experiments gradcheck

clean-venv:
	rm -rf $(VENV)
