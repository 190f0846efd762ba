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

.PHONY: demo up test lint chromium photos bench soak unit build synth bootstrap deploy destroy clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(LOCAL): pyproject.toml | $(VENV)/bin/python
	$(PIP) -e ".[local]"
	touch $@

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) -e ".[dev]"
	touch $(LOCAL) $@

venv: $(STAMP)

demo: $(LOCAL)  ## start the local stack, send a realistic batch of orders, keep running (ARGS=--exit to stop)
	$(BIN)/conveyor demo $(ARGS)

up: $(LOCAL)  ## start the local stack and keep it running until Ctrl-C
	$(BIN)/conveyor up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: $(STAMP) chromium photos  ## lint, types and every test (lint runs beside the tests)
	@# ruff and mypy take one core for under a minute while the tests mostly wait on
	@# the emulator; their output follows the tests', and either failing fails the target.
	@$(MAKE) --no-print-directory lint > .lint.log 2>&1 & lint=$$!; \
	$(BIN)/pytest -n 2 --dist loadgroup --durations=15 $(ARGS); tests=$$?; \
	wait $$lint; linted=$$?; cat .lint.log; \
	[ $$linted -eq 0 ] || echo "lint failed"; [ $$tests -eq 0 ] && [ $$linted -eq 0 ]

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

bench: $(STAMP)  ## image and function benchmarks; exits 1 if a target is missed
	@# Every benchmark runs and prints its table; then a missed target fails the target.
	@failed=""; for name in images functions pipeline media; do \
		$(BIN)/python -m bench.$$name || failed="$$failed $$name"; done; \
	if [ -n "$$failed" ]; then echo "targets missed in:$$failed"; exit 1; fi

soak: $(LOCAL)  ## orders and images through the local stack under injected faults
	$(BIN)/conveyor soak $(ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(ARGS)

build: $(STAMP)  ## Lambda layers for arm64 / Python 3.12, without Docker
	$(BIN)/python -m conveyor.infra.layers

synth: $(STAMP)  ## CloudFormation templates in cdk.out/, offline (no account, no Docker)
	$(BIN)/python -m conveyor.infra.app
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
