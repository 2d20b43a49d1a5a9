# The two commands of the README, and a few more. Each target does its own set-up:
# a virtual environment in .venv with this package installed (editable) and its test tools.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-lib test-notebooks test-browser lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

## demo: the main job — plain training vs LSTSD on 30%-noisy MNIST-1D; prints a table, writes runs/demo/
demo: $(STAMP)
	$(BIN)/lstsd-edu compare --dataset mnist1d --noise 0.3 --methods ce,short,long,lstsd --seeds 0,1,2 --out runs/demo

## test: every test — the library, the notebooks (fast mode, nbval) and the browser test
test: $(STAMP)
	sh tests/browser/ensure_chromium.sh
	LSTSD_EDU_FAST=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

## lab: open the notebooks in JupyterLab
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs .pytest_cache
