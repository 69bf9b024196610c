# The host twin of the built Lambda artefacts: what `herald local --built` and tests/e2e/test_built.py run.
#
# Included from the main Makefile (`include mk/built.mk`, after mk/sam.mk); `make build-host` runs
# sam build, then infra/herald_tools/built.py: .aws-sam/build's layer with its compiled wheels
# installed again for this machine (same distributions, same versions, Python 3.13), every other
# file and each function's artifact as built, in .aws-sam/build-host. pip runs only when the
# layer's compiled distributions change (.aws-sam/build-host/.host-wheels); an unchanged build is
# left as it is.

TWIN_DIR ?= .aws-sam/build-host
# The Lambda runtime's Python, found as sam-build finds it (SAM_PYENV_VERSION, from mk/sam.mk).
LAMBDA_PYTHON ?= python3.13
BIN ?= .venv/bin

.PHONY: build-host

build-host: sam-build
	@LAMBDA_PY="$$(PYENV_VERSION=$(SAM_PYENV_VERSION) $(LAMBDA_PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 13); print(sys.executable)' 2>/dev/null)" || { \
	  echo "build-host: $(LAMBDA_PYTHON) (the Lambda runtime's Python, 3.13) was not found on PATH." >&2; exit 1; }; \
	  PYTHONPATH=shared:infra $(BIN)/python -m herald_tools.built --build-dir $(SAM_BUILD_DIR) --twin-dir $(TWIN_DIR) --python "$$LAMBDA_PY"
