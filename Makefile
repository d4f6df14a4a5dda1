# The two commands a newcomer needs: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

# pip installs without byte-compiling, then compileall byte-compiles on every core (pip does one
# file at a time; ~15 s less on 2 cores). Like pip, a file that does not compile is not an error.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/wrm serve

# Two pytest-xdist workers, each with its own engine, taking whole modules (module-scoped
# fixtures stay once per module) in tests/conftest.py's LONGEST_FIRST order.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	$(BIN)/python -m bench.ingest --seconds 30
	$(BIN)/python -m bench.ingest --seconds 30 --ack spooled
	$(BIN)/python -m bench.ingest --seconds 30 --ack spooled --threads 32
	$(BIN)/python -m bench.small_request --ack stored
	$(BIN)/python -m bench.small_request --ack spooled
	$(BIN)/python -m bench.ingest --seconds 30 --transport http
	$(BIN)/python -m bench.ingest --seconds 30 --transport http-json
	$(BIN)/python -m bench.indicators --runs 1000000
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.console
	$(BIN)/python -m bench.crash --cycles 20
	$(BIN)/python -m bench.fuzz --payloads 20000
	$(BIN)/python -m bench.redaction
	$(BIN)/python -m bench.webhooks --duration 30

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data .pytest_cache
