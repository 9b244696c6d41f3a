#!/usr/bin/env python
"""Simulator throughput: hf_deeplense.simulation against lenstronomy, in one process and one run.

Ours: `simulate_batch` (model_ii set-up: SIE + shear + Sersic source, Gaussian PSF, Poisson + Gaussian
noise) per class, batches of `--batch-size` (and `--gpu-batch-size` on CUDA), images/s = batch / median
batch time over `--repeats` batches after one warm-up batch. lenstronomy: one `ImageModel.image` call per
image (the way DeepLenseSim uses it; the `ImageModel` is built once per class and reused; one
untimed warm-up call) with the same
grid, PSF and lens models (cdm: 25 `POINT_MASS`; axion: DeepLenseSim's chain of 100 `POINT_MASS`, since
lenstronomy has no finite line mass) plus its Poisson and background noise, over `--lenstronomy-images`
images. Ratio = ours / lenstronomy on the same device (CPU).

Usage:
    python bench/bench_simulator.py                       # CPU (1 thread), and CUDA if available
    python bench/bench_simulator.py --threads 2 --json outputs/bench/bench_simulator.json
    python bench/bench_simulator.py --smoke                # tiny, a check that it runs (tests)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_deeplense.simulation import get_preset, simulate_batch, simulate_lens_finding_batch  # noqa: E402

CLASSES = ("no_sub", "cdm", "axion")


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def time_ours(cfg, class_name: str, batch: int, repeats: int, device: str) -> float:
    """Images/s of `simulate_batch` (median over `repeats` batches of fresh indices, after a warm-up)."""

    def run(start: int) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        begin = time.perf_counter()
        if class_name == "lens_finding":
            out = simulate_lens_finding_batch(cfg, range(start, start + batch), seed=0, device=device)
        else:
            out = simulate_batch(cfg, class_name, range(start, start + batch), seed=0, device=device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        assert torch.isfinite(out["images"]).all()
        return time.perf_counter() - begin

    run(10_000_000)  # warm-up
    seconds = [run(r * batch) for r in range(repeats)]
    return batch / statistics.median(seconds)


def time_lenstronomy(cfg, class_name: str, n_images: int, seed: int = 0) -> float | None:
    """Images/s of lenstronomy, one image per call (None if lenstronomy is not installed)."""
    try:
        from lenstronomy.Data.imaging_data import ImageData
        from lenstronomy.Data.psf import PSF
        from lenstronomy.ImSim.image_model import ImageModel
        from lenstronomy.LensModel.lens_model import LensModel
        from lenstronomy.LightModel.light_model import LightModel
        from lenstronomy.Util import image_util, param_util
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    size, scale = cfg.image_size, cfg.pixel_scale
    offset = (size - 1) / 2 * scale
    transform = np.array([[scale, 0.0], [0.0, -scale]])  # row 0 on top, as ours
    data = ImageData(
        image_data=np.zeros((size, size)),
        ra_at_xy_0=-offset,
        dec_at_xy_0=offset,
        transform_pix2angle=transform,
    )
    psf = PSF(psf_type="GAUSSIAN", fwhm=cfg.psf_fwhm[0], pixel_size=scale, truncation=cfg.psf_truncation)
    n_points = {"no_sub": 0, "cdm": cfg.n_subhalos, "axion": 100}[class_name]
    model = ImageModel(
        data,
        psf,
        lens_model_class=LensModel(["SIE", "SHEAR"] + ["POINT_MASS"] * n_points),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        kwargs_numerics={"supersampling_factor": 1},
    )
    exposure = cfg.exposure_time[0] * cfg.num_exposures
    begin = time.perf_counter()
    for index in range(n_images + 1):
        if index == 1:  # the first call is a warm-up (lazy initialisation)
            begin = time.perf_counter()
        theta_e = rng.uniform(*cfg.theta_e_range)
        e1, e2 = param_util.phi_q2_ellipticity(rng.uniform(0, math.pi), rng.uniform(*cfg.q_range))
        kwargs_lens = [
            {"theta_E": theta_e, "e1": e1, "e2": e2, "center_x": 0.0, "center_y": 0.0},
            {"gamma1": rng.uniform(-0.05, 0.05), "gamma2": rng.uniform(-0.05, 0.05)},
        ]
        if class_name == "cdm":
            for _ in range(n_points):
                radius, angle = rng.uniform(0.25, 2.0), rng.uniform(0, 2 * math.pi)
                kwargs_lens.append(
                    {
                        "theta_E": theta_e * math.sqrt(rng.uniform(1e-6, 1e-2)),
                        "center_x": radius * math.cos(angle),
                        "center_y": radius * math.sin(angle),
                    }
                )
        elif class_name == "axion":
            half, angle = rng.uniform(0.03, 3.0), rng.uniform(0, math.pi)
            for s in np.linspace(-half, half, n_points):
                kwargs_lens.append(
                    {
                        "theta_E": theta_e * math.sqrt(0.03 / n_points),
                        "center_x": s * math.cos(angle),
                        "center_y": s * math.sin(angle),
                    }
                )
        s1, s2 = param_util.phi_q2_ellipticity(rng.uniform(0, math.pi), rng.uniform(*cfg.source_q_range))
        kwargs_source = [
            {"amp": 20.0, "R_sersic": rng.uniform(*cfg.source_r_eff_range), "n_sersic": rng.uniform(*cfg.source_n_range),
             "e1": s1, "e2": s2, "center_x": rng.uniform(-0.35, 0.35), "center_y": rng.uniform(-0.35, 0.35)}
        ]  # fmt: skip
        image = model.image(kwargs_lens, kwargs_source)
        image = (
            image
            + image_util.add_poisson(np.clip(image, 0, None), exp_time=exposure)
            + image_util.add_background(image, 0.01)
        )
    return n_images / (time.perf_counter() - begin)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check that the bench runs")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--gpu-batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lenstronomy-images", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: per-core figures)")
    parser.add_argument(
        "--devices", default=None, help="comma-separated (default: cpu, and cuda if available)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.image_size, args.batch_size, args.gpu_batch_size, args.repeats, args.lenstronomy_images = (
            16,
            8,
            16,
            1,
            2,
        )
    torch.set_num_threads(args.threads)
    devices = (
        args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    cfg = get_preset("model_ii", image_size=args.image_size)
    lens_cfg = get_preset("lens_finding", image_size=args.image_size)

    rows = []
    lenstronomy_rates = {c: time_lenstronomy(cfg, c, args.lenstronomy_images) for c in CLASSES}
    for device in devices:
        batches = [args.batch_size] + ([args.gpu_batch_size] if device.startswith("cuda") else [])
        for batch in batches:
            for class_name in (*CLASSES, "lens_finding"):
                config = lens_cfg if class_name == "lens_finding" else cfg
                ours = time_ours(config, class_name, batch, args.repeats, device)
                reference = lenstronomy_rates.get(class_name)
                rows.append(
                    {
                        "name": f"{device}/{class_name}/batch{batch}",
                        "device": device,
                        "class": class_name,
                        "batch_size": batch,
                        "images_per_second": ours,
                        "lenstronomy_images_per_second": reference,
                        "ratio": ours / reference if reference and device == "cpu" else None,
                    }
                )
    header = "| row | ours img/s | lenstronomy img/s (CPU, 1 image/call) | ratio |"
    lines = [header, "|---|---|---|---|"]
    for row in rows:
        reference = row["lenstronomy_images_per_second"]
        ratio = f"x{row['ratio']:.1f}" if row["ratio"] else ""
        lines.append(
            f"| {row['name']} | {row['images_per_second']:.0f} | {'' if reference is None else f'{reference:.0f}'} | {ratio} |"
        )
    print("\n".join(lines))
    report = {
        "bench": "simulator",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "cpu": cpu_name(),
        "gpu": torch.cuda.get_device_name() if any(d.startswith("cuda") for d in devices) else None,
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "image_size": args.image_size,
        "rows": rows,
        "images_per_second": {row["name"]: row["images_per_second"] for row in rows}
        | {f"lenstronomy/{c}": r for c, r in lenstronomy_rates.items() if r is not None},
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
