# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all test-compat bench lint format docs docs-serve clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements-lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: venv
	$(BIN)/disentkit train --model qlae --data dsprites_procedural --steps 200 --batch-size 32 \
		--set model.arch=dlib --set eval.n_samples=2000 --set eval.mode=fast --set eval.baselines=true \
		--run-dir runs/demo --resume
	$(BIN)/disentkit demo
	@echo "Trained QLAE run (config, checkpoint, log, weights, metrics.json): $(CURDIR)/runs/demo"

test: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-all: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "slow or not slow"

# The metric tests against the oldest supported and the newest available numpy / scipy /
# scikit-learn (the lower bounds of pyproject.toml), on Python 3.11 and without torch (these
# tests do not import it). The test tools keep the versions of requirements-lock.txt.
PYTHON_COMPAT ?= python3.11
COMPAT_OLD := numpy==2.0.0 scipy==1.13.0 scikit-learn==1.7.0
COMPAT_NEW := numpy scipy scikit-learn
COMPAT_TOOLS := joblib==1.6.0 threadpoolctl==3.8.0 safetensors==0.8.0 pytest==9.2.0 \
	hypothesis==6.170.15
COMPAT_TESTS := tests/metrics tests/test_validation.py tests/test_io.py

test-compat:
	test -x .venv-compat-old/bin/python || $(PYTHON_COMPAT) -m venv .venv-compat-old
	.venv-compat-old/bin/python -m pip install --quiet $(COMPAT_OLD) $(COMPAT_TOOLS)
	test -x .venv-compat-new/bin/python || $(PYTHON_COMPAT) -m venv .venv-compat-new
	.venv-compat-new/bin/python -m pip install --quiet --upgrade $(COMPAT_NEW)
	.venv-compat-new/bin/python -m pip install --quiet $(COMPAT_TOOLS)
	@for v in old new; do \
		echo "== .venv-compat-$$v:" $$(.venv-compat-$$v/bin/python -c "import numpy, scipy, \
			sklearn; print('numpy', numpy.__version__, 'scipy', scipy.__version__, \
			'scikit-learn', sklearn.__version__)"); \
		PYTHONPATH=src .venv-compat-$$v/bin/python -m pytest -q -p no:cacheprovider \
			$(COMPAT_TESTS) || exit 1; \
	done

bench: venv
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/metrics_scale.py
	$(BIN)/python benchmarks/data.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/train.py --part all

# The documentation site (mkdocs.yml) into site/; warnings are errors. `make test` builds it
# too, into a temporary folder (tests/test_docs.py). docs-serve: live preview on :8000.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .venv-compat-old .venv-compat-new build dist site src/*.egg-info .pytest_cache .ruff_cache .import_linter_cache
