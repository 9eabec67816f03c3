# pyrt: everything runs as root on Debian 12.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYRT   := $(VENV)/bin/pyrt
RUNC   ?= $(shell command -v runc)
DEMO   := build/demo-bundle
APT_PACKAGES := gcc make python3-venv python3-dev libcap-dev libseccomp-dev busybox-static \
                runc crun bash golang-github-containers-common

.PHONY: deps install demo test test-unit test-runtime test-runc lint bench clean

deps:  ## system packages (apt)
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); }

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: deps $(PY)  ## pyrt (and the dev tools) into .venv
	$(PY) -m pip install -q '.[dev]'
	@# pip drops interpreter flags from script shebangs; -IS saves ~3 ms per call
	sed -i '1s|^#!.*python[0-9.]*$$|& -IS|' $(PYRT)

demo: install  ## build the demo bundle and run a container from it
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(PY) -m pyrt.demo $(DEMO)
	$(PYRT) run --bundle $(DEMO) pyrt-demo-$$$$

test-unit: install
	$(PY) -m pytest -q tests/unit

test-runtime: install  ## the runtime tests against pyrt
	$(PY) -m pytest -q tests/runtime

test-runc: install  ## the same runtime tests against runc
	PYRT_TEST_RUNTIME=$(RUNC) $(PY) -m pytest -q tests/runtime

test: test-unit test-runtime test-runc  ## all of it

bench: install  ## pyrt, runc and crun side by side -> bench/results.md
	@command -v /usr/bin/time >/dev/null || apt-get install -y -qq time
	$(PY) bench/bench.py

lint: install
	$(VENV)/bin/ruff check runtime tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf build $(VENV) runtime/pyrt/_shim*.so runtime/pyrt/_seccomp*.so runtime/*.egg-info
