# tag_pipeline: the two Quickstart commands are `make quickstart` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TAG_PIPELINE_HOME ?= $(CURDIR)/.tag_pipeline
export DAGSTER_HOME ?= $(TAG_PIPELINE_HOME)/dagster
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false
DAGSTER_HOST ?= 127.0.0.1
DAGSTER_PORT ?= 3000
# The model `make serve` serves; empty: what `tag-pipeline serving-model` names.
MODEL_URI ?=
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 5001
# The browser test drives the distribution's chromium; Playwright never downloads one.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: setup browser home quickstart catalog dev test test-fast lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	# Bytecode is compiled once here: uv does not by default, and machines that set
	# PYTHONDONTWRITEBYTECODE would otherwise recompile TensorFlow's modules in every process.
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e '.[dev]'
	touch $@

# Debian's chromium for tag_pipeline_tests/browser (about 350 MB); a no-op once installed.
browser:
	@test -x $(CHROMIUM) || { \
	  command -v apt-get >/dev/null || { echo "install chromium at $(CHROMIUM) (no apt-get here)" >&2; exit 1; }; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

home: setup
	$(BIN)/tag-pipeline init

# Set everything up and run the main job on the embedded demo catalog.
quickstart: home
	$(BIN)/dagster job execute -m tag_pipeline.definitions -j catalog_job
	$(BIN)/tag-pipeline summary
	$(BIN)/dagster job execute -m tag_pipeline.definitions -j model_job
	$(BIN)/dagster job execute -m tag_pipeline.definitions -j tags_job
	$(BIN)/tag-pipeline summary

dev: home
	$(BIN)/dagster dev -w workspace.yaml -h $(DAGSTER_HOST) -p $(DAGSTER_PORT)

# Serve the champion over REST with MLflow's scoring server (POST /invocations), from the
# project home's registry unless MLFLOW_TRACKING_URI says otherwise: the model `tag` and
# product_tags use (the champion refiner's model, which holds its tagger, when it applies to the
# champion tagger; else the champion tagger). MODEL_URI=models:/NAME@ALIAS serves another.
.PHONY: serve
# env-manager local starts `uvicorn` by name: the venv's bin must come first on PATH.
serve: export PATH := $(abspath $(BIN)):$(PATH)
serve: export MLFLOW_TRACKING_URI ?= sqlite:///$(TAG_PIPELINE_HOME)/mlflow/mlflow.db
serve: setup
	uri="$(MODEL_URI)"; [ -n "$$uri" ] || uri=$$($(BIN)/tag-pipeline serving-model) || exit 1; \
	$(BIN)/mlflow models serve -m "$$uri" --env-manager local -h $(SERVE_HOST) -p $(SERVE_PORT)

# The MLflow UI of the local store (the run and version links in Dagster's metadata go here).
.PHONY: mlflow-ui
mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(TAG_PIPELINE_HOME)/mlflow/mlflow.db -h 127.0.0.1 -p 5000

# The README's test command (CI runs it): every test, on TEST_WORKERS pytest-xdist workers
# (a module runs on one worker, in the order conftest.py gives), the slowest 15 listed.
TEST_WORKERS ?= 2
PYTEST_XDIST = -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder
test: setup browser
	$(BIN)/pytest $(PYTEST_XDIST) --durations=15

# The quick loop: no test that trains a model or runs a whole Dagster job (marked slow).
test-fast: setup
	$(BIN)/pytest $(PYTEST_XDIST) -m "not slow" --durations=10

lint: setup
	$(BIN)/ruff check tag_pipeline tag_pipeline_tests bench

bench: setup
	$(BIN)/python bench/ingest_clean.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/myntra_ingest.py
	bash bench/materialize_demo.sh
	$(BIN)/python bench/train_myntra.py
	$(BIN)/python bench/pyfunc_throughput.py
	$(BIN)/python bench/train_refiner.py
	$(BIN)/python bench/small_catalogs.py
	$(BIN)/python bench/explain_throughput.py
	$(BIN)/python bench/product_tags_write.py
	$(BIN)/python bench/feedback_apply.py
	$(BIN)/python bench/sales_behaviour.py
	$(BIN)/python bench/daily_retag.py

clean:
	rm -rf $(TAG_PIPELINE_HOME)
