# The two commands that do everything on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, from the local CPU build; then everything else with torch held there
	$(BIN)/python -m pip install -q torch==2.13.0
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(BIN)/python -m pip install -q -c $(VENV)/constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(BIN)/edgewise profile sd15-unet --plot out/sd15-unet-profile.png

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/capture.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/simulate.py
	$(BIN)/python benchmarks/plan.py
	$(BIN)/python benchmarks/execute.py
	$(BIN)/python benchmarks/fuzz.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/sweep.py

clean:
	rm -rf $(VENV) out
