# pgw: two set-up commands work on a fresh machine with Python 3.11+:
#   make demo   installs into .venv and runs the end-to-end demo on embedded defaults
#   make test   installs into .venv and runs the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test proto check-proto lint lint-policies bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# openmined-psi: the PSI baseline of tests and benches only. It pins protobuf 6, which
	# grpcio-tools cannot share; without its deps it works on protobuf 7.
	$(BIN)/python -m pip install --quiet --no-deps 'openmined-psi==2.0.6'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pgw demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

check-proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py --check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

lint-policies: $(STAMP)
	$(BIN)/pgw policy lint policies

bench: $(STAMP)
	$(BIN)/python bench/query_path.py
	$(BIN)/python bench/audit.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
