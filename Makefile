# powermarket: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.deps-stamp
# The second environment of `make test-integration`: the `pufferlib` and
# `benchmarl` extras (torch 2.9.0 from pufferlib-core, torchrl 0.11 from
# benchmarl), which cannot share .venv's torchrl >= 0.14.
TRAIN_VENV ?= .venv-train
TRAIN_PY := $(TRAIN_VENV)/bin/python
TRAIN_STAMP := $(TRAIN_VENV)/.deps-stamp
CARGO_TERM_COLOR ?= never
export CARGO_TERM_COLOR

.PHONY: help venv build develop lint fmt test test-rust test-python test-integration train-venv fuzz bench bench-rust demo clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "maturin>=1.7,<2" "numpy>=1.24" "gymnasium>=1.2" "pettingzoo>=1.24" \
		"pytest>=8" "hypothesis>=6" "mypy>=1.10" "ruff>=0.6" "numba>=0.60" "matplotlib>=3.7" \
		"tqdm>=4.60" "scipy>=1.10"
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with the build, test, bench and demo dependencies

develop: $(STAMP) ## Build the extension in release mode into .venv
	$(VENV)/bin/maturin develop --release -q

build: develop ## Alias of develop

fmt: ## Format Rust and Python sources
	cargo fmt
	$(VENV)/bin/ruff format python tests benches examples || true

lint: $(STAMP) ## cargo fmt --check, clippy -D warnings, ruff
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples

test-rust: ## cargo test on the pure core (debug build: debug assertions on)
	cargo test -p powermarket

test-python: develop ## pytest (default suite; integration tests excluded) and stubtest
	$(PY) -m pytest -q
	$(PY) -m mypy.stubtest powermarket._core --ignore-missing-stub

test: lint test-rust test-python ## Everything CI runs: lint, Rust tests, Python tests

$(TRAIN_STAMP): pyproject.toml
	test -x $(TRAIN_PY) || python3 -m venv $(TRAIN_VENV)
	$(TRAIN_PY) -m pip install -q --upgrade pip
	$(TRAIN_PY) -m pip install -q "maturin>=1.7,<2"
	touch $(TRAIN_STAMP)

train-venv: $(TRAIN_STAMP) ## Build the extension into $(TRAIN_VENV) with the pufferlib, benchmarl and train extras
	VIRTUAL_ENV=$(abspath $(TRAIN_VENV)) $(TRAIN_VENV)/bin/maturin develop --release -q \
		--extras pufferlib,benchmarl,train,test

test-integration: develop train-venv ## Heavy tests: SB3, TorchRL, RLlib, pandapower, PyPSA in .venv; PufferLib, BenchMARL, TorchRL 0.11 in $(TRAIN_VENV)
	$(PIP) install -q "stable-baselines3>=2.3" "ray[rllib]>=2.40" "torchrl>=0.14" "tensordict>=0.14" \
		"pandapower>=2.14" "pypsa>=0.30"
	$(PY) -m pytest -q -m integration
	$(TRAIN_PY) -m pytest -q -m integration tests/test_pufferlib.py tests/test_benchmarl.py \
		tests/test_torchrl.py

FUZZ_EXAMPLES ?= 400
FUZZ_STEPS ?= 60
fuzz: develop ## Long run of the stateful property tests (FUZZ_EXAMPLES, FUZZ_STEPS; random seeds)
	PM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PM_FUZZ_STEPS=$(FUZZ_STEPS) $(PY) -m pytest -q tests/test_stateful.py

bench-rust: ## criterion benches of the core
	cargo bench -p powermarket

bench: develop ## Python side-by-side benchmarks (prints tables)
	$(PY) benches/bench_clear.py
	$(PY) benches/bench_env.py
	$(PY) benches/bench_vec.py
	$(PY) benches/bench_analysis.py
	$(PY) benches/bench_design.py

demo: develop ## The main job: learn to bid on the default market, print the table, save a figure
	$(PY) examples/demo.py

clean: ## Remove build outputs
	cargo clean
	rm -rf $(VENV) $(TRAIN_VENV) outputs
