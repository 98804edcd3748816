# `make demo` and `make test` set up .venv on first use (CPU torch pinned to the local wheel).
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

.PHONY: setup demo test bench vulkan-driver
setup: $(VENV)/.installed

# The device-path tests (tests/test_device_vulkan.py) run on Vulkan; with no GPU driver that is
# Mesa's software device (lavapipe). Installed when missing and we are root; else they skip.
vulkan-driver:
	@if { ls /usr/share/vulkan/icd.d/*.json || ls /etc/vulkan/icd.d/*.json; } >/dev/null 2>&1 \
		&& { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q 'libvulkan\.so\.1'; then :; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "vulkan-driver: not root, so Mesa's Vulkan driver is not installed: the Vulkan tests will skip"; \
	elif ! command -v apt-get >/dev/null; then \
		echo "vulkan-driver: no apt-get to install Mesa's Vulkan driver: the Vulkan tests will skip"; \
	elif ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers) >/dev/null 2>&1; then \
		echo "vulkan-driver: apt-get could not install mesa-vulkan-drivers: the Vulkan tests will skip"; \
	fi

demo: $(VENV)/.installed
	$(VENV)/bin/genesis-dist demo

# Two pytest workers (CI has 2 cores; much of a test process's time is one-threaded Taichi
# compiling), each taking whole files (--dist loadfile) so a module's fixtures build once.
TEST_WORKERS ?= 2
test: $(VENV)/.installed vulkan-driver
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick || exit 1; done
