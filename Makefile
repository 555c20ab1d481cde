# Two commands on a fresh clone: `make demo` (environment + the five stages on real data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch here; on a GPU box pip takes the CUDA build of the same version.
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv test test-fast lint demo clean-demo

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

test: venv
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-fast: venv
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

# RECIPE=bi-encoder-self-distill|bi-encoder-lce|reference|distill-ensemble|lce-group32 (recipes/sample/, default
# bi-encoder-self-distill); DATA=<dir> (default: ../shared/data/offline, else a
# slice downloaded from the Hub); OUT=<dir>; SEED=42; EPOCHS=<the recipe's>; see scripts/demo.sh
demo: venv
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/demo.sh

clean-demo:
	rm -rf demo
