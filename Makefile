# Herald: every set-up step lives here, so a fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The venv runs Lambda's Python (3.13), found as sam-build finds it (mk/sam.mk): with pyenv,
# PYENV_VERSION=$(SAM_PYENV_VERSION) puts 3.13.0 first; elsewhere a python3.13 on PATH.
VENV_PYTHON ?= python3.13
VENV_PYTHON_VERSION := 3.13
DEV_LOCK := requirements/dev.txt
LAYER_LOCK := requirements/layer.txt

.DEFAULT_GOAL := help
.PHONY: help install lock demo test browser lint-code bench local clean

help:
	@grep -E "^## " Makefile | sed "s/^## /  make /"

include mk/sam.mk
include mk/built.mk

# The venv: exactly requirements/dev.txt (every file's sha256 checked), then herald itself, editable.
# A venv of another Python (an older checkout's 3.11) is made anew.
$(STAMP): $(DEV_LOCK) pyproject.toml shared/requirements.txt
	@PYENV_VERSION=$(SAM_PYENV_VERSION) $(VENV_PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null || { \
	  echo "install: $(VENV_PYTHON) (Python $(VENV_PYTHON_VERSION), Lambda's runtime) was not found on PATH." >&2; \
	  echo "  With pyenv: 'pyenv install 3.13' and set SAM_PYENV_VERSION (now $(SAM_PYENV_VERSION))." >&2; \
	  echo "  Otherwise: put a python3.13 on PATH, or name it: make VENV_PYTHON=/path/to/python3.13." >&2; \
	  exit 1; }
	@if test -x $(BIN)/python && ! $(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then \
	  echo "install: $(VENV) is not Python $(VENV_PYTHON_VERSION): making it anew"; rm -rf $(VENV); fi
	@test -x $(BIN)/python || PYENV_VERSION=$(SAM_PYENV_VERSION) $(VENV_PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

## install: the venv (.venv, Python 3.13) from requirements/dev.txt
install: $(STAMP)

## lock: regenerate requirements/layer.txt and requirements/dev.txt (UPGRADE=1: newest allowed versions)
lock: $(STAMP)
	$(BIN)/python requirements/lock.py --uv $(BIN)/uv $(if $(UPGRADE),--upgrade)

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
	$(BIN)/ruff check shared functions infra tests mk requirements
	$(BIN)/ruff format --check shared functions infra tests mk requirements
	$(BIN)/lint-imports
	$(BIN)/mypy

## bench: measurements written to docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python -m herald_tools.bench

clean:
	rm -rf .aws-sam site test-output
