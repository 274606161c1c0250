# Two commands on a fresh machine:  make lab   (the tutorial)   make test   (every test)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: lab test setup system-packages bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[lab,test]"
	touch $@

setup: $(VENV)/.installed

system-packages:
	@scripts/system-packages.sh

lab: setup
	$(BIN)/workbench lab

test: setup system-packages
	$(BIN)/pytest

bench: setup system-packages
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache
