# Two entry points for a fresh machine: `make demo` and `make test`. Each creates .venv and installs into it.
# TORCH picks the torch build: the default takes PyPI's (CUDA on Linux); CI uses TORCH=torch==2.13.0 (a CPU wheel).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch
DEMO_DIR ?= estm-demo
DEMO_ARGS ?=
BIN := $(VENV)/bin

.PHONY: demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps "tinysoundfont>=0.3.6"  # renders the scores corpus; its pyaudio is not needed
	touch $@

demo: $(VENV)/.installed
	$(BIN)/estm demo -o $(DEMO_DIR) $(DEMO_ARGS)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) estm-demo
