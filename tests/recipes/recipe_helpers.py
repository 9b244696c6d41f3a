"""Helpers of the recipe smoke tests: launching a recipe under `accelerate launch` on the CPU."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
CONFIGS = RECIPES / "configs"


def load_recipe(name: str):
    """Import `recipes/<name>.py` (recipes are scripts, not a package) and return the module."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def recipe_env(**extra: str) -> dict[str, str]:
    """Environment of a recipe subprocess: offline, one thread, glibc malloc tuned for torch."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MALLOC_MMAP_THRESHOLD_": "4294967296",
        "MALLOC_TRIM_THRESHOLD_": "68719476736",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(script: str, *args: str, num_processes: int = 1) -> list[str]:
    """`accelerate launch` of a recipe on the CPU (gloo for two processes)."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1"]
    launcher += ["--mixed_precision", "no", "--dynamo_backend", "no", "--num_processes", str(num_processes)]
    if num_processes > 1:
        launcher += ["--multi_gpu", "--main_process_port", str(free_port())]
    return [*launcher, str(RECIPES / script), *args]


def run_recipe(script: str, *args: str, num_processes: int = 1, timeout: float = 300, **env: str) -> str:
    """Run a recipe under `accelerate launch`; returns its output, fails the test with its tail."""
    result = subprocess.run(
        launch_command(script, *args, num_processes=num_processes),
        cwd=REPO,
        env=recipe_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{script} exited with {result.returncode}:\n{output[-6000:]}")
    return output
