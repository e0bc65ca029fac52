# Two commands do everything: `make run` (the experiment suite, quick profile,
# writing runs/, which git ignores, each report set beside the reference in
# reports/) and `make test` (the test suite). Both create .venv when it is
# missing and are safe to run twice. `make reference` regenerates reports/.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-machines full reference bench gradcheck data clean-venv

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
	$(PY) -m experiments run all --profile full

# The committed reference reports (full profile, hours on 2 cores): only on purpose.
reference: data
	$(PY) -m experiments run all --profile full --out reports
	$(PY) -m experiments gradcheck --out reports
	$(PY) -m experiments bench --out reports/bench

test: $(STAMP)
	$(PY) -m pytest

# The suite under other kernels and thread counts (docs/design.md, "Machine independence"):
# a test that flips under one of them asserts the machine, not the math. About 7x `make test`.
test-machines: $(STAMP)
	bash tools/test_machines.sh $(PY)

bench: $(STAMP)
	$(PY) -m experiments bench

gradcheck: $(STAMP)
	$(PY) -m experiments gradcheck

clean-venv:
	rm -rf $(VENV)
