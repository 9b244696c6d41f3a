# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# glibc malloc returns memory to the OS too eagerly for torch on CPU (3-5x slower simulation).
export MALLOC_MMAP_THRESHOLD_ := 4294967296
export MALLOC_TRIM_THRESHOLD_ := 68719476736
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install test demo lint format bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# CPU machines: the pinned torch lies on disk; GPU machines keep their own torch (setup.cfg has a range).
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[dev,reference]"
	# Headless Chromium for the demo-app browser test (tests/app): only as root and only when missing; never
	# fails the install (without apt the browser test skips locally and fails under CI=true).
	-if [ "$$(id -u)" = 0 ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then \
		(timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
		chromium chromium-driver) || echo "chromium not installed (apt unreachable): browser test cannot run"; fi
	touch $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n 2 -q tests

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) recipes/demo.py --output_dir outputs/demo

lint: $(STAMP)
	$(PY) -m ruff check hf_deeplense recipes dataset_scripts tests bench app
	$(PY) -m ruff format --check hf_deeplense recipes dataset_scripts tests bench app

format: $(STAMP)
	$(PY) -m ruff format hf_deeplense recipes dataset_scripts tests bench app
	$(PY) -m ruff check --fix hf_deeplense recipes dataset_scripts tests bench app

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf outputs .pytest_cache .ruff_cache
