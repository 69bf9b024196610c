# Herald: every set-up step lives here, so a fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test browser lint-code bench local clean

help:
	@grep -E "^## " Makefile | sed "s/^## /  make /"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

include mk/sam.mk
include mk/built.mk

## demo: run the whole system locally (the embedded local cloud) on the sample community
demo: $(STAMP)
	$(BIN)/herald demo

## build-host: sam build, then its host twin in .aws-sam/build-host (what `herald local --built` runs)
## local: the local cloud, until Ctrl-C
local: $(STAMP)
	$(BIN)/herald local

## test: the whole suite: code lint, template lint, sam build and its host twin, then every test
test: $(STAMP) browser lint-code lint-template sam-build build-host
	AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled $(BIN)/python -m pytest -n 2 --dist loadfile

## browser: headless Chromium (Debian's package) and an emoji font, for tests/e2e/test_browser.py
browser:
	@command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi "noto color emoji" || { \
	  command -v apt-get >/dev/null || { echo "make browser: apt-get not found; install Chromium (as /usr/bin/chromium) and an emoji font by hand" >&2; exit 1; }; \
	  echo "installing chromium and fonts-noto-color-emoji with apt-get..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null \
	  || { echo "make browser: apt-get install failed (it needs root)" >&2; exit 1; }; }

lint-code: $(STAMP)
	$(BIN)/ruff check shared functions infra tests
	$(BIN)/ruff format --check shared functions infra tests
	$(BIN)/lint-imports
	$(BIN)/mypy

## bench: measurements written to docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python -m herald_tools.bench

clean:
	rm -rf .aws-sam site test-output
