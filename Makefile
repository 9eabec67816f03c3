# pyrt: everything runs as root on Debian 12.
# Debian's own interpreter: libpython is linked in and _socket, select, fcntl are built in,
# so each pyrt call starts ~2 ms sooner than on a shared-libpython build (bench/results.md)
PYTHON ?= /usr/bin/python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYRT   := $(VENV)/bin/pyrt
RUNC   ?= $(shell command -v runc)
DEMO   := build/demo-bundle
APT_PACKAGES := gcc make python3-venv python3-dev libcap-dev libseccomp-dev busybox-static \
                runc crun bash golang-github-containers-common uidmap

.PHONY: deps engine-deps install demo test test-unit test-runtime test-runc test-cgroupv2 \
        test-engines lint bench clean

deps:  ## system packages (apt)
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); }

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: deps $(PY)  ## pyrt (and the dev tools) into .venv
	$(PY) -m pip install -q '.[dev]'
	@# pip drops interpreter flags from script shebangs, which take one argument:
	@# -I -S (isolated, no site: ~3 ms per call) and -X utf8 (UTF-8 mode: ~0.3 ms)
	sed -i '1s|^#!.*python[0-9.]*$$|& -ISXutf8|' $(PYRT)

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

# This host is cgroup v1: boot one throw-away cgroup v2 guest (QEMU, ~4 s) and run
# tests/cgroupv2 in it against pyrt, then runc; junit XML lands in $(V2OUT).
V2OUT    := build/cgroupv2
V2PYTEST := $(PY) -m pytest -q -rs -p no:cacheprovider tests/cgroupv2
test-cgroupv2: install  ## tests/cgroupv2 in a cgroup v2 guest, against pyrt and runc
	rm -rf $(V2OUT) && mkdir -p $(V2OUT)
	tests/cgroupv2/guest/run-in-guest -t 1800 --rw $(V2OUT) -- bash -c '\
	  echo "== pyrt"; $(V2PYTEST) --junitxml=$(V2OUT)/pyrt.xml; a=$$?; \
	  echo "== runc"; PYRT_TEST_RUNTIME=$(RUNC) $(V2PYTEST) --junitxml=$(V2OUT)/runc.xml; \
	  exit $$((a | $$?))'

engine-deps:  ## podman, conmon, containerd, docker.io (apt; their services are not started)
	tests/engines/install-engines

# podman, containerd (ctr) and docker with pyrt, then runc, as their runtime; every
# engine runs from a temporary directory with its own sockets (README.md, "Engines")
test-engines: install engine-deps  ## the engine integration tests (~2 min)
	$(PY) -m pip install -q 'grpcio>=1.50'  # tests/engines/cri.py speaks CRI like a kubelet
	$(PY) -m pytest -q -rs -p no:cacheprovider tests/engines

bench: install  ## pyrt, runc and crun side by side -> bench/results.md
	@command -v /usr/bin/time >/dev/null || apt-get install -y -qq time
	$(PY) bench/bench.py

lint: install
	$(VENV)/bin/ruff check runtime tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf build $(VENV) runtime/pyrt/_shim*.so runtime/pyrt/_seccomp*.so runtime/*.egg-info
