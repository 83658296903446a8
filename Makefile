# daun_lib: set-up, tests and the reproduction of the paper's figures.
#   make reproduce   install if needed (with the optional extra 'sionna' for notebook 06), run every notebook
#                    at paper scale (results/, figures/)
#   make quick       the same with quick=True (small trial counts)
#   make extra       studies outside make reproduce's time budget: notebook 09 with a 10 dB user power spread
#                    (results/unknown_users_spread.csv, about 2 minutes)
#   make test        install if needed, run the test suite (includes the quick notebooks)
#   make test-fast   the same without the tests that execute notebooks (marker `notebooks`)
#   make lint        ruff check (rules in pyproject.toml) and ruff format --check
#   make docs        regenerate docs/results/*.md and the README's verdict from results/*.csv (daun_lib.studies.report)
#   make bench       speed benchmarks -> results/benchmark.csv, figures/scaling.png
#   make validate    package channel vs Sionna's UMa, methods on Sionna's channels -> results/validation_*.csv
#                    (installs the optional extra 'sionna'; not part of make test)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed first and pinned to a release whose CPU build this project's
# machines carry on disk; elsewhere, point pip at PyTorch's CPU wheel index
# (TORCH_PIP_ARGS="--index-url <cpu index>") to avoid a multi-GB CUDA download.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
BUILD ?= build/notebooks
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: install test test-fast lint format reproduce quick extra docs bench validate clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test,notebooks,dask,lint]"
	touch $@

test: install
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

test-fast: install
	$(PY) -m pytest -q -m "not notebooks" tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

reproduce: install
	$(PY) -c "import sionna.phy" 2>/dev/null || $(PY) -m pip install -q -e ".[sionna]"
	$(PY) -m daun_lib.studies.run_notebooks --out $(BUILD) $(NOTEBOOKS)
	$(PY) -m daun_lib.studies.report

extra: install
	$(PY) -m daun_lib.studies.run_notebooks --out $(BUILD)-extra -p power_spreads_db "[10]" -p results_name unknown_users_spread notebooks/09_unknown_users.ipynb
	$(PY) -m daun_lib.studies.report

quick: install
	$(PY) -m daun_lib.studies.run_notebooks --quick --out $(BUILD)-quick $(NOTEBOOKS)

docs: install
	$(PY) -m daun_lib.studies.report

bench: install
	$(PY) benchmarks/run_benchmarks.py

validate: install
	$(PY) -c "import sionna.phy" 2>/dev/null || $(PY) -m pip install -q -e ".[sionna]"
	$(PY) benchmarks/validate_sionna.py

clean:
	rm -rf build .pytest_cache
