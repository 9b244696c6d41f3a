#!/usr/bin/env python
"""Latency of the demo app's two actions (app/app.py): simulate one image, and predict (forward pass, Grad-CAM,
overlay) with an untrained default-size `deeplense_equivariant` classifier (D4, 64 px, 227k parameters).

    python bench/bench_app.py --calls 10
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from hf_deeplense.models.equivariant import (
    DeepLenseEquivariantConfig,
    DeepLenseEquivariantForImageClassification,
)

APP = Path(__file__).resolve().parents[1] / "app" / "app.py"
CLASS_NAMES = ["no_sub", "cdm", "axion"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--preset", default="model_ii")
    args = parser.parse_args(argv)
    spec = importlib.util.spec_from_file_location("deeplense_demo_app", APP)
    app = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = app
    spec.loader.exec_module(app)
    torch.manual_seed(0)
    config = DeepLenseEquivariantConfig(
        id2label=dict(enumerate(CLASS_NAMES)),
        label2id={name: index for index, name in enumerate(CLASS_NAMES)},
    )
    with tempfile.TemporaryDirectory() as model_dir:
        DeepLenseEquivariantForImageClassification(config).save_pretrained(model_dir)
        loaded = app.load_model(model_dir)
    app.predict(loaded, app.simulate_image(args.preset, "cdm", 1.2, 0)[0])  # warm-up
    simulate_seconds, predict_seconds = [], []
    for seed in range(args.calls):
        start = time.perf_counter()
        image, _ = app.simulate_image(args.preset, "cdm", 1.2, seed)
        simulate_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        app.predict(loaded, image)
        predict_seconds.append(time.perf_counter() - start)
    result = {
        "simulate_ms_median": 1000 * statistics.median(simulate_seconds),
        "predict_ms_median": 1000 * statistics.median(predict_seconds),
    }
    print(
        f"{args.preset}: simulate_image median {result['simulate_ms_median']:.0f} ms, predict (forward + Grad-CAM "
        f"+ overlay) median {result['predict_ms_median']:.0f} ms over {args.calls} calls"
    )
    return result


if __name__ == "__main__":
    main()
