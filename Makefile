# Two entry points for a fresh machine: `make demo` and `make test`. Each creates .venv and installs into it.
# TORCH picks the torch build: the default takes PyPI's (CUDA on Linux); CI uses TORCH=torch==2.13.0 (a CPU wheel).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch
DEMO_DIR ?= out/demo
BIN := $(VENV)/bin

.PHONY: demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/estm info
	$(BIN)/python -c "import numpy as np; from estm_core.audio import save; t = np.arange(3 * 22050) / 22050; \
	save('$(DEMO_DIR)/tone.wav', 0.5 * np.sin(2 * np.pi * 440 * t), 22050, force=True)"
	$(BIN)/estm inspect $(DEMO_DIR)/tone.wav

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out
