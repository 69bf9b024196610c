# AWS SAM: lint the template and build the Lambda artefacts.
#
# Included from the main Makefile (`include mk/sam.mk`); also usable alone:
#   make -f mk/sam.mk lint-template
#   make -f mk/sam.mk sam-build
# Paths are relative to the repository root, where make is run.

# SAM CLI pins its own boto3, so it lives in a venv of its own, apart from .venv.
SAM_VENV := .venv-sam
SAM_CLI_VERSION ?= 1.170.0
SAM_STAMP = $(SAM_VENV)/.sam-cli-$(SAM_CLI_VERSION)
SAM_TEMPLATE ?= template.yaml
SAM_BUILD_DIR ?= .aws-sam/build
# pip resolves the builds for the Lambda runtime (python3.13, arm64); sam looks for python3.13 on PATH.
# With pyenv, this puts 3.13.0 first and keeps 3.11.7 for python3; elsewhere a python3.13 on PATH is used.
SAM_PYENV_VERSION ?= 3.13.0:3.11.7
# HeraldLayer (BuildMethod: makefile, shared/Makefile -> mk/build_layer.py): requirements/layer.txt's
# wheels for this pip platform. manylinux_2_34 (glibc 2.34, Amazon Linux 2023) also takes the older
# manylinux wheels. Another processor: LAYER_PLATFORM=manylinux_2_34_x86_64 (and a build dir of its own).
LAYER_PLATFORM ?= manylinux_2_34_aarch64
export LAYER_PLATFORM
# sam's build cache hashes shared/ only: what else the layer is made from is recorded there too.
LAYER_INPUTS := shared/.layer-inputs
# cfn-lint 1.53.3 expands the SAM transform itself, so it reports SAM-level errors too.
CFN_LINT ?= .venv/bin/cfn-lint

.PHONY: lint-template sam-build

lint-template:
	$(CFN_LINT) $(SAM_TEMPLATE)

$(SAM_STAMP):
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	rm -f $(SAM_VENV)/.sam-cli-*
	touch $@

sam-build: $(SAM_STAMP)
	@PYENV_VERSION=$(SAM_PYENV_VERSION) python3.13 -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null || { \
	  echo "sam-build: python3.13 (the Lambda runtime's Python) was not found on PATH." >&2; \
	  echo "  With pyenv: 'pyenv install 3.13' and set SAM_PYENV_VERSION (now $(SAM_PYENV_VERSION))." >&2; \
	  echo "  Otherwise: put a python3.13 on PATH." >&2; \
	  exit 1; }
	@{ echo "LAYER_PLATFORM=$(LAYER_PLATFORM)"; sha256sum requirements/layer.txt mk/build_layer.py; } > $(LAYER_INPUTS).new
	@cmp -s $(LAYER_INPUTS).new $(LAYER_INPUTS) && rm $(LAYER_INPUTS).new || mv $(LAYER_INPUTS).new $(LAYER_INPUTS)
	PYENV_VERSION=$(SAM_PYENV_VERSION) SAM_CLI_TELEMETRY=0 \
	  $(SAM_VENV)/bin/sam build --template-file $(SAM_TEMPLATE) --build-dir $(SAM_BUILD_DIR)
