PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test,distributed]"
	-$(BIN)/gradflow warmup    # precompile the numba kernels (optional: errors ignored)
	touch $(STAMP)

install: $(STAMP)

# LeNet-5 on the bundled digits with the defaults (see README "Training").
# LeNet's GEMMs are tiny: one BLAS thread is faster than several, and far faster
# when the machine is busy, so the demo pins OpenBLAS to 1 thread unless you say otherwise.
demo: $(STAMP)
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} $(BIN)/gradflow train --out demo_out

# the default run leaves out the tests marked slow (long end-to-end runs: 40 kills of a
# real training process, full-length example runs); `make test-slow` runs only those
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests

bench: $(STAMP)
	$(BIN)/gradflow bench

clean:
	rm -rf $(VENV) demo_out .pytest_cache
