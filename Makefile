# ccbs-isdn — every target bootstraps what it needs (Debian packages, a venv) first.
#   make demo    the simulated box + the real ccbsd, plays the CCBS stories
#   make test    the whole test suite (unit, conformance, integration, chaos, fuzz)
#   make bench   benchmarks -> bench/results.json (never part of make test)

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
APT_PKGS := libcapi20-3 libpri1.4 graphviz
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: all demo test bench soak fuzz sysdeps venv lint clean

all: test

sysdeps:
	@missing=""; \
	for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "== installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(STAMP)

test: sysdeps venv
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

demo: sysdeps venv
	$(PY) -m ccbs_isdn.drivers.sim.demo

bench: sysdeps venv
	$(PY) bench/run.py

soak: sysdeps venv
	$(PY) -m tests.chaos.soak

fuzz: sysdeps venv
	$(PY) -m pip install -q atheris
	$(PY) -m tests.fuzz.atheris_main

lint: venv
	$(PY) -m ruff check ccbs_isdn drivers tests bench
	$(PY) -m mypy --strict ccbs_isdn/rose ccbs_isdn/engine ccbs_isdn/analog

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
