# Every target creates its own virtual environment from the pinned pyproject.toml.
# The demo and the local stack need only the runtime and `local` extras; everything else
# (tests, lint, CDK, benchmarks) installs the `dev` extra on top of them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCAL  := $(VENV)/.installed-local
STAMP  := $(VENV)/.installed-dev
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check
ARGS   ?=
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 16,18,20

.PHONY: demo up test lint lambda-python chromium photos bench soak unit build synth bootstrap deploy destroy clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(LOCAL): pyproject.toml | $(VENV)/bin/python
	$(PIP) -e ".[local]"
	touch $@

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) -e ".[dev]"
	touch $(LOCAL) $@

venv: $(STAMP)

# Lambda's runtime on this machine: CPython 3.12 (pyenv has it here) with exactly the
# layers' pinned packages and boto3, and this project's source on its path. The local
# functions run on it; without CPython 3.12 they run on the host's Python, with a warning.
LAMBDA_PY  := $(shell for p in $$(ls -d $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 \
  2>/dev/null) $$(command -v python3.12); do $$p -c '' 2>/dev/null && { echo $$p; break; }; done)
LAMBDA_ENV := build/lambda-python
LAMBDA_STAMP := $(LAMBDA_ENV)/.installed
# The functions' unit tests, on that Python too (its packages plus the test tools).
PY312_ENV  := build/py312-tests
PY312_STAMP := $(PY312_ENV)/.installed

lambda-python: $(LAMBDA_STAMP)  ## the functions' Lambda Python (3.12) for the local stack
$(LAMBDA_STAMP): pyproject.toml src/conveyor/infra/layers.py | $(LOCAL)
	@if [ -z "$(LAMBDA_PY)" ]; then \
	  echo "no CPython 3.12 on this machine: the local functions run on the host's Python"; \
	else \
	  rm -rf $(LAMBDA_ENV) && $(LAMBDA_PY) -m venv $(LAMBDA_ENV) && \
	  $(LAMBDA_ENV)/bin/pip install --quiet --disable-pip-version-check \
	    $$($(BIN)/python -m conveyor.infra.layers --requirements) && \
	  echo "$(CURDIR)/src" > "$$($(LAMBDA_ENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')/conveyor.pth" && \
	  touch $@; fi

$(PY312_STAMP): pyproject.toml | $(STAMP)
	@[ -n "$(LAMBDA_PY)" ] || { echo "CPython 3.12 is needed for the functions' tests on Lambda's Python"; exit 1; }
	rm -rf $(PY312_ENV) && $(LAMBDA_PY) -m venv $(PY312_ENV)
	$(PY312_ENV)/bin/pip install --quiet --disable-pip-version-check -e ".[local]" \
	  $$($(BIN)/python -c 'from importlib.metadata import version as v; print(*(f"{d}=={v(d)}" for d in ("pytest", "pytest-timeout", "pytest-xdist", "hypothesis")))')
	touch $@

demo: $(LOCAL) $(LAMBDA_STAMP)  ## start the local stack, send a realistic batch of orders, keep running (ARGS=--exit to stop)
	$(BIN)/conveyor demo $(ARGS)

up: $(LOCAL) $(LAMBDA_STAMP)  ## start the local stack and keep it running until Ctrl-C
	$(BIN)/conveyor up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Every AWS call the tests' local stacks make is recorded here; tests/proof then checks
# the records against the synthesized roles (least privilege, proved by use).
IAM_CALLS := build/iam-calls
IAM_EVALUATOR := tests/proof/node_modules/.package-lock.json

# What API Gateway sends a function behind an HTTP API (payload format 2.0), as the SAM
# CLI generates it: the lean profile's local events are checked against it key for key.
# The SAM CLI pins its own boto3, so it gets a virtual environment of its own.
SAM_CLI_VERSION := 1.170.0
SAM_EVENT := build/sam-cli/http-api-proxy.json
$(SAM_EVENT):
	rm -rf build/sam-cli && $(PYTHON) -m venv build/sam-cli/venv
	build/sam-cli/venv/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	SAM_CLI_TELEMETRY=0 build/sam-cli/venv/bin/sam local generate-event apigateway http-api-proxy > $@.tmp
	mv $@.tmp $@

# The deployed code's own tests, again on Lambda's Python.
DEPLOYED_TESTS := tests/unit/functions tests/unit/core

test: $(STAMP) chromium photos $(IAM_EVALUATOR) $(SAM_EVENT) $(LAMBDA_STAMP) $(PY312_STAMP)  ## lint, types, every test, the IAM proof
	@# ruff and mypy take one core for under a minute while the tests mostly wait on
	@# the emulator; their output follows the tests', and either failing fails the target.
	@rm -rf $(IAM_CALLS); export CONVEYOR_IAM_RECORD=$(CURDIR)/$(IAM_CALLS); \
	$(MAKE) --no-print-directory lint > .lint.log 2>&1 & lint=$$!; \
	$(BIN)/pytest -n 2 --dist loadgroup --durations=15 $(ARGS); tests=$$?; \
	if [ -z "$(ARGS)" ]; then $(BIN)/pytest -q tests/proof; proof=$$?; \
	else echo "IAM proof not run: ARGS narrows the tests that record the calls"; proof=0; fi; \
	echo "the deployed code's tests on Python 3.12:"; \
	$(PY312_ENV)/bin/pytest -q -n 2 -p no:cacheprovider $(DEPLOYED_TESTS); on312=$$?; \
	wait $$lint; linted=$$?; cat .lint.log; \
	[ $$linted -eq 0 ] || echo "lint failed"; \
	[ $$tests -eq 0 ] && [ $$proof -eq 0 ] && [ $$on312 -eq 0 ] && [ $$linted -eq 0 ]

$(IAM_EVALUATOR): tests/proof/package.json tests/proof/package-lock.json
	npm ci --prefix tests/proof --no-audit --no-fund --loglevel=error

chromium:  ## Debian's Chromium for the console's browser tests (Playwright drives it)
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

# Real photographs as image editors and cameras write them (EXIF, XMP, ICC and
# Photoshop segments, progressive scans), from Debian's KDE wallpapers package.
PHOTOS := build/photos
PHOTO_FILES := FallenLeaf ColorfulCups Path Volna
photos: $(PHOTOS)/.done  ## real editor photographs for the imaging tests
$(PHOTOS)/.done:
	@rm -rf $(PHOTOS) && mkdir -p $(PHOTOS)/deb
	@cd $(PHOTOS)/deb && { apt-get download -qq plasma-workspace-wallpapers 2>/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
	  apt-get download -qq plasma-workspace-wallpapers; }; }
	@dpkg-deb -x $(PHOTOS)/deb/*.deb $(PHOTOS)/deb/x
	@for name in $(PHOTO_FILES); do \
	  cp "$$(ls -S $(PHOTOS)/deb/x/usr/share/wallpapers/$$name/contents/images/*.jpg | head -1)" \
	    $(PHOTOS)/$$name.jpg; done
	@rm -rf $(PHOTOS)/deb && touch $@ && ls $(PHOTOS)

bench: $(STAMP) $(LAMBDA_STAMP) build  ## every benchmark; exits 1 if a target is missed
	@# Every benchmark runs and prints its table; then a missed target fails the target.
	@failed=""; for name in images formats functions layers pipeline media; do \
		$(BIN)/python -m bench.$$name || failed="$$failed $$name"; done; \
	if [ -n "$$failed" ]; then echo "targets missed in:$$failed"; exit 1; fi

soak: $(LOCAL) $(LAMBDA_STAMP)  ## orders and images through the local stack under injected faults
	$(BIN)/conveyor soak $(ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(ARGS)

build: $(STAMP)  ## Lambda layers and function code for arm64 / Python 3.12 (with bytecode), without Docker
	@[ -n "$(LAMBDA_PY)" ] || { echo "CPython 3.12 is needed to compile the bytecode Lambda runs"; exit 1; }
	$(BIN)/python -m conveyor.infra.layers --python $(LAMBDA_PY)

PROFILE ?= private
synth: $(STAMP)  ## CloudFormation templates in cdk.out/, offline (no account, no Docker); PROFILE=lean for the lean one
	rm -rf cdk.out
	CDK_CONTEXT_JSON='{"profile": "$(PROFILE)"}' $(BIN)/python -m conveyor.infra.app
	$(BIN)/cfn-lint cdk.out/*.template.json --ignore-checks W
	@$(BIN)/python -m conveyor.infra.summary cdk.out

CDK_CLI_VERSION := 2.1148.1
CDK := build/cdk-cli/node_modules/.bin/cdk

$(CDK):
	npm install --no-audit --no-fund --prefix build/cdk-cli aws-cdk@$(CDK_CLI_VERSION)

bootstrap: $(CDK)  ## once per account and region: the CDK's asset bucket and roles
	$(CDK) bootstrap $(ARGS)

deploy: build $(CDK)  ## deploy to the account and region in your AWS environment
	$(CDK) deploy --all --require-approval broadening --outputs-file build/outputs.json $(ARGS)
	@echo "where things are (also in build/outputs.json):"; cat build/outputs.json

destroy: $(CDK)  ## delete the stacks (tables and buckets are retained)
	$(CDK) destroy --all $(ARGS)

clean:
	rm -rf $(VENV) .conveyor .pytest_cache .mypy_cache .ruff_cache cdk.out build
