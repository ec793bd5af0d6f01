# Every target creates and uses .venv itself, so each works as the first command on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint typecheck replay bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(PY) -m bot

lint: $(STAMP_DEV)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP_DEV)
	$(PY) -m mypy

test: lint typecheck
	$(PY) -m pytest -q

replay: $(STAMP_RUN)
	$(PY) -m trader replay --signals examples/signals_log.csv \
		--outcomes examples/signal_outcomes.csv \
		--strategy examples/BYBIT_OPTIMAL_CONFIG.json \
		--chart out/replay_equity.png

bench: $(STAMP_DEV)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache out
