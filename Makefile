# Herald: every set-up step lives here, so a fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test lint-code bench local clean

help:
	@grep -E "^## " Makefile | sed "s/^## /  make /"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

include mk/sam.mk

## demo: run the whole system locally (the embedded local cloud) on the sample community
demo: $(STAMP)
	$(BIN)/herald demo

## local: the local cloud, until Ctrl-C
local: $(STAMP)
	$(BIN)/herald local

## test: the whole suite: code lint, template lint, sam build, then every test
test: $(STAMP) lint-code lint-template sam-build
	AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled $(BIN)/python -m pytest -n 2 --dist loadfile

lint-code: $(STAMP)
	$(BIN)/ruff check shared functions infra tests

## bench: measurements written to docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python -m herald_tools.bench

clean:
	rm -rf .aws-sam site test-output
