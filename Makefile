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

.PHONY: setup home quickstart catalog dev test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
	touch $@

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

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check tag_pipeline tag_pipeline_tests bench

bench: setup
	$(BIN)/python bench/ingest_clean.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/myntra_ingest.py
	bash bench/materialize_demo.sh
	$(BIN)/python bench/train_myntra.py
	$(BIN)/python bench/pyfunc_throughput.py

clean:
	rm -rf $(TAG_PIPELINE_HOME)
