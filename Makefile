# Two commands do everything: `make run` (the experiment suite, quick profile,
# writing runs/, which git ignores, each report set beside the reference in
# reports/) and `make test` (the test suite). Both create .venv when it is
# missing and are safe to run twice. `make reference` regenerates reports/.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# `make full WORKERS=4` / `make reference WORKERS=4`: the units of work on a local Dask cluster of 4
# processes (docs/scale-out.md)
WORKERS ?= 1
# `make run TWINS=serial`: the lockstep twins one after the other (default auto: side by side where two
# cores per twin's threads are free; docs/paths.md, "The twins side by side")
TWINS ?= auto
STAMP  := $(VENV)/.installed

# `make test-oldest`: the oldest releases pyproject.toml admits, pinned in constraints-oldest.txt, in a venv
# of their own. Installed once (several GB: the package index's torch for x86-64 Linux is a CUDA build, which
# runs on the CPU) and again only when pyproject.toml or the constraints change.
OLDEST_PYTHON ?= python3.11
OLDEST        := .venv-oldest
OLDEST_PY     := $(OLDEST)/bin/python
OLDEST_STAMP  := $(OLDEST)/.installed
OLDEST_PINS    = $(shell sed -n 's/^\([A-Za-z0-9_.-]*\)==.*/\1/p' constraints-oldest.txt)

.PHONY: run test test-machines test-oldest full reference bench gradcheck data clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

data: $(STAMP)
	$(PY) -m experiments data

run: data
	$(PY) -m experiments run all --profile quick --twins $(TWINS)

full: data
	$(PY) -m experiments run all --profile full --workers $(WORKERS) --twins $(TWINS)

# The committed reference reports (full profile, hours on 2 cores): only on purpose.
reference: data
	$(PY) -m experiments run all --profile full --workers $(WORKERS) --twins $(TWINS) --out reports
	$(PY) -m experiments gradcheck --out reports
	$(PY) -m experiments bench --out reports/bench

test: $(STAMP)
	$(PY) -m pytest

# The suite under other kernels and thread counts (docs/design.md, "Machine independence"):
# a test that flips under one of them asserts the machine, not the math. About 7x `make test`.
test-machines: $(STAMP)
	bash tools/test_machines.sh $(PY)

# The build backend first, at its floor too, then the project without build isolation so that it builds with it.
$(OLDEST_STAMP): pyproject.toml constraints-oldest.txt
	@test -x $(OLDEST_PY) || $(OLDEST_PYTHON) -m venv $(OLDEST)
	$(OLDEST_PY) -m pip install --quiet -c constraints-oldest.txt setuptools wheel
	$(OLDEST_PY) -m pip install --quiet --no-build-isolation -c constraints-oldest.txt -e '.[test]'
	@touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP)
	@$(OLDEST_PY) -c 'import importlib.metadata as md, platform, sys; print("Python", platform.python_version()); \
	  [print(name, md.version(name)) for name in sys.argv[1:]]' $(OLDEST_PINS)
	$(OLDEST_PY) -m pytest

bench: $(STAMP)
	$(PY) -m experiments bench

gradcheck: $(STAMP)
	$(PY) -m experiments gradcheck

clean-venv:
	rm -rf $(VENV)
