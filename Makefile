# The two commands of the README, and a few more. Each target does its own set-up:
# a virtual environment in .venv with this package installed (editable) and its test tools.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-browser lab notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

## demo: the main job — plain training vs LSTSD and the strong baselines on 30%-noisy MNIST-1D, each
## with its tuned settings, five fresh seeds; prints a table, writes runs/demo/ (figure included)
demo: $(STAMP)
	$(BIN)/lstsd-edu compare --dataset mnist1d --noise 0.3 --methods ce,ls,gce,elr,lstsd --seeds 1000,1001,1002,1003,1004 --jobs 2 --out runs/demo

## test: every test — lint and format (ruff), the library, the notebooks (fast mode, nbval) and the
## browser test. One thread per process: tiny models gain nothing from two, and the browser test
## runs JupyterLab, a kernel and Chromium side by side on two cores.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	sh tests/browser/ensure_chromium.sh
	OMP_NUM_THREADS=1 LSTSD_EDU_FAST=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider --durations=15

## test-browser: only the browser test (JupyterLab + headless Chromium); screenshots in tests/browser/artifacts/
test-browser: $(STAMP)
	sh tests/browser/ensure_chromium.sh
	LSTSD_EDU_FAST=1 $(BIN)/python -m pytest tests/browser -v --durations=0 -p no:cacheprovider

## lab: open the notebooks in JupyterLab (ipywidgets brings its lab extension: nothing to build)
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

## notebooks: re-execute every chapter in full mode, in place (outputs kept, widget state stripped)
notebooks: $(STAMP)
	$(BIN)/python notebooks/execute.py

clean:
	rm -rf $(VENV) runs .pytest_cache
