# The two set-up commands of README.rst: `make demo` and `make test`.
# Each creates .venv (Python 3.11+) and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-test.txt | cksum | cut -d' ' -f1)

.PHONY: test check fault-report demo bench sandbox clean

$(STAMP): requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	rm -f $(VENV)/.installed-* && touch $@

# The packages ruff and mypy --strict (pyproject.toml) check: all of the project's code.
CHECKED := emulator service

# Lint and static types first: a failure here stops `make test` (and so CI) in seconds.
check: $(STAMP)
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/mypy $(addprefix -p ,$(CHECKED))

# PYTHONDONTWRITEBYTECODE emptied: Python's default again, so pytest keeps its rewritten
# test modules in __pycache__ between runs; without them each worker spends about 5 s of
# CPU rewriting the test files again (a machine may set it, as the development one does).
test: $(STAMP) check
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 2 -q -rs   # -rs: a test left out says why (the page test needs a browser)

# The figures README's Guarantees quote: what each fault and crash test's faults did.
# --fault-report runs only the tests that keep a fault tally, wherever they are.
fault-report: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q --fault-report

demo: $(STAMP)
	$(BIN)/python -m demo

# Emulated nodes with the demo configuration and the real service on :5000; Ctrl-C stops it.
sandbox: $(STAMP)
	$(BIN)/python -m sandbox

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
