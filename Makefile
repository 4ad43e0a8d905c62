SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTEST_ARGS ?=
# make test runs the suite on pytest-xdist workers, one per logical core (at most 4: each holds torch, and some tests
# start processes of their own), one torch thread each (tests/conftest.py). PYTEST_WORKERS=0 runs it in this process
# (for --pdb); PYTEST_ARGS come last, so they may override any of these options.
PYTEST_WORKERS ?= logical

.PHONY: install postgres arm-toolchain demo test docs lint type format clean

# torch==2.13.0 first: its CPU wheel is what we want; a bare `torch` requirement would pull a CUDA build.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m sb3_distill demo

# The distributed-tuning tests start a PostgreSQL server of their own from the system's binaries (initdb, pg_ctl).
# Where they are missing they are installed with the system's package manager; if that is impossible, make test
# fails here with what to do (tests never skip).
PG_HELP := PostgreSQL is needed by tests/test_tuning_postgres.py (the distributed-tuning tests start a server of their own).\
 Install it and run make test again: Debian/Ubuntu: sudo apt-get install postgresql; Fedora: sudo dnf install\
 postgresql-server; macOS: brew install postgresql. Its initdb and pg_ctl must be on PATH or in /usr/lib/postgresql/*/bin.
postgres:
	@if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		{ $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; } \
			|| { echo "Could not install PostgreSQL with apt-get. $(PG_HELP)" >&2; exit 1; }; \
	else echo "No PostgreSQL and no apt-get. $(PG_HELP)" >&2; exit 1; fi

# tests/test_device.py cross-compiles exported students for a Cortex-M4 (flash and RAM in bytes) with the Arm GNU
# toolchain, runs them on 32-bit Arm Linux under qemu-user (parity), and compiles them for this machine with its C
# compiler. Installed like PostgreSQL; where that is impossible, make test fails here with what to do (tests never skip).
ARM_HELP := The Arm GNU toolchain (arm-none-eabi-gcc), the Arm Linux cross-compiler with qemu-user and a C compiler are\
 needed by tests/test_device.py. Install them and run make test again: Debian/Ubuntu: sudo apt-get install gcc\
 gcc-arm-none-eabi gcc-arm-linux-gnueabihf qemu-user; Fedora: sudo dnf install gcc arm-none-eabi-gcc-cs\
 arm-none-eabi-newlib gcc-arm-linux-gnu qemu-user; macOS: brew install --cask gcc-arm-embedded (no qemu-user).
ARM_TOOLS := arm-none-eabi-gcc arm-linux-gnueabihf-gcc qemu-arm
arm-toolchain:
	@if ( for tool in $(ARM_TOOLS); do command -v $$tool >/dev/null 2>&1 || exit 1; done ) \
		&& { command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; }; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		{ $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq gcc gcc-arm-none-eabi \
			gcc-arm-linux-gnueabihf qemu-user; } \
			|| { echo "Could not install the Arm toolchain with apt-get. $(ARM_HELP)" >&2; exit 1; }; \
	else echo "No arm-none-eabi-gcc and no apt-get. $(ARM_HELP)" >&2; exit 1; fi

# --dist loadgroup: the tests marked xdist_group("processes") (several busy processes at once, timed against each
# other, or a set-up started once per module: PostgreSQL, the journal study) run in turn on one worker.
test: install postgres arm-toolchain
	$(PY) -m pytest tests -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadgroup $(PYTEST_ARGS)

# The docs site (Sphinx, offline): warnings are errors, so a broken reference or docstring fails.
docs: install
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

lint: install
	$(VENV)/bin/ruff check sb3_distill tests scripts
	$(VENV)/bin/ruff format --check sb3_distill tests scripts

format: install
	$(VENV)/bin/ruff format sb3_distill tests scripts
	$(VENV)/bin/ruff check --fix sb3_distill tests scripts

type: install
	$(VENV)/bin/mypy sb3_distill

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache docs/_build
