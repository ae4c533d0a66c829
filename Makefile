# The two commands of the README. Both set everything up from a fresh clone first.
#   make demo   train LeNet-5 on the embedded digits data and write runs/demo/
#   make test   run the whole test suite
# torch is installed first and pinned (see DEVELOPERS.md): a plain `torch` requirement
# would pull a multi-GB CUDA build on machines that have a CPU wheel at hand.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.*
STAMP := $(VENV)/.deepnotes-installed

.PHONY: setup demo test lint bench lab clean data-fashion-mnist

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: setup
	rm -rf runs/demo
	$(VENV)/bin/deepnotes train lenet5 --data digits --epochs 40 --lr 3e-3 --augment crop --out runs/demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

# The lab at full size; writes docs/lab/ (figures, result.json) and docs/lab.md.
lab: setup
	$(VENV)/bin/deepnotes lab run all --out docs/lab
	$(VENV)/bin/deepnotes lab report docs/lab --markdown docs/lab.md

bench: setup
	$(PY) benchmarks/time_to_accuracy.py --json

# Fashion-MNIST from Debian's package (offline machines); needs root.
data-fashion-mnist:
	apt-get install -y dataset-fashion-mnist

clean:
	rm -rf $(VENV) runs build src/*.egg-info
