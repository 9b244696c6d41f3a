#!/usr/bin/env python
"""Read speed of a lensing dataset (images/s) through the access paths training uses.

Rows (each on the `train` split of the dataset, `pixel_values` float32 `(C, H, W)`):
- `slices numpy`: `dataset.with_format("numpy")[i:i + B]`, consecutive slices;
- `slices torch`: the same with `with_format("torch")`;
- `DataLoader rows numpy/torch`: shuffled `DataLoader(batch_size=B, collate_fn=LensingCollator())`;
  the loader reads each batch with one `__getitems__` call and the collator stacks the rows;
- `batched_loader`: shuffled `hf_deeplense.data.batched_loader`, a DataLoader over
  `BatchedLensingDataset` (one numpy fancy-index gather per batch on the memory-mapped columns);
- `random single rows`: `dataset[i]` for random `i` (numpy format);
- `random single rows batched`: `BatchedLensingDataset(dataset)[i]` for random `i`;
- `LensingAugment`: rotations + flips + shifts + noise on a `(B, C, H, W)` batch (CPU);
- `recipe pipeline (stock Trainer)` / `recipe pipeline (LensingTrainer)`: the whole training input of the recipes
  (shuffled read + `LensingCollator`: `LensImageProcessor` min-max, then the seeded D4 + shift + noise
  augmentation), read as the stock `Trainer` reads a `datasets.Dataset` (rows) and as `LensingTrainer` does
  (`BatchedLensingDataset`). Per DataLoader process: with `--num-workers N` each worker does this work.

Without `--dataset`, a synthetic dataset is written with `hf_deeplense.data.write_split` first.

Usage:
    python bench/bench_data.py                                  # 16384 images of (1, 64, 64), batch 256
    python bench/bench_data.py --dataset data/model_ii --json bench_data.json
    python bench/bench_data.py --smoke                          # tiny and fast (tests run this)
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/bench_data.py` from a checkout without an install
    sys.path.insert(0, str(REPO_ROOT))

from hf_deeplense.data import (  # noqa: E402
    BatchedLensingDataset,
    LensingAugment,
    LensingCollator,
    batched_loader,
    lensing_features,
    load_lensing_dataset,
    shard_bounds,
    with_row_index,
    write_dataset_card,
    write_split,
)
from hf_deeplense.image_processing_lens import LensImageProcessor  # noqa: E402


def build_synthetic(
    out_dir: Path, num_examples: int, image_shape: tuple[int, int, int], num_shards: int
) -> Path:
    """A random dataset in the hf_deeplense format (3 classes, one float column)."""
    features = lensing_features(["no_sub", "cdm", "axion"], image_shape, ["log10_m_a"])

    def make_shard(index: int) -> dict[str, np.ndarray]:
        start, stop = shard_bounds(num_examples, num_shards, index)
        rng = np.random.default_rng(index)
        return {
            "pixel_values": rng.random((stop - start, *image_shape), dtype=np.float32),
            "label": np.arange(start, stop) % 3,
            "log10_m_a": rng.uniform(-24, -22, stop - start).astype(np.float32),
        }

    write_split(out_dir, "train", num_shards, make_shard, features, progress=False)
    write_dataset_card(out_dir, title="synthetic benchmark data")
    return out_dir


def rate(run: Callable[[], int], min_seconds: float) -> float:
    """Images per second of `run` (which returns the number of images it read), repeated for at
    least `min_seconds` after one untimed warm-up call."""
    run()
    images, start = 0, time.perf_counter()
    while True:
        images += run()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return images / elapsed


def benchmarks(dataset, batch_size: int, num_workers: int, single_rows: int) -> dict[str, Callable[[], int]]:
    data_np = dataset.with_format("numpy")
    data_torch = dataset.with_format("torch")
    size = len(dataset)
    collator = LensingCollator()
    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)

    def slices(data) -> Callable[[], int]:
        def run() -> int:
            count = 0
            for start in range(0, size, batch_size):
                count += len(data[start : start + batch_size]["pixel_values"])
            return count

        return run

    def loader(make: Callable[[], DataLoader]) -> Callable[[], int]:
        def run() -> int:
            return sum(len(batch["pixel_values"]) for batch in make())

        return run

    fast = BatchedLensingDataset(dataset)

    def single(data) -> Callable[[], int]:
        def run() -> int:
            for index in rng.integers(0, size, single_rows):
                data[int(index)]["pixel_values"]
            return single_rows

        return run

    shuffled = dict(shuffle=True, generator=generator, num_workers=num_workers)
    augment = LensingAugment(max_shift=2, noise_std=0.01)
    batch = torch.as_tensor(data_np[:batch_size]["pixel_values"])

    def augment_run() -> int:
        augment(batch, generator=generator)
        return len(batch)

    size_hw = int(dataset.features["pixel_values"].shape[-1])
    recipe_collator = LensingCollator(
        LensImageProcessor(num_channels=int(dataset.features["pixel_values"].shape[0]), size=size_hw),
        augment=LensingAugment(max_shift=2, noise_std=0.01),
        seed=0,
    )
    indexed = with_row_index(dataset)

    return {
        "slices numpy": slices(data_np),
        "slices torch": slices(data_torch),
        "DataLoader rows numpy": loader(
            lambda: DataLoader(data_np, batch_size, collate_fn=collator, **shuffled)
        ),
        "DataLoader rows torch": loader(
            lambda: DataLoader(data_torch, batch_size, collate_fn=collator, **shuffled)
        ),
        "batched_loader": loader(lambda: batched_loader(fast, batch_size, collator, **shuffled)),
        "random single rows": single(data_np),
        "random single rows batched": single(fast),
        "LensingAugment": augment_run,
        "recipe pipeline (stock Trainer)": loader(
            lambda: DataLoader(
                indexed.with_format("numpy"), batch_size, collate_fn=recipe_collator, **shuffled
            )
        ),
        "recipe pipeline (LensingTrainer)": loader(
            lambda: batched_loader(BatchedLensingDataset(indexed), batch_size, recipe_collator, **shuffled)
        ),
    }


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", help="dataset folder or Hub repo id (default: build a synthetic one)")
    parser.add_argument("--num-examples", type=int, default=16384, help="synthetic dataset size")
    parser.add_argument("--image-shape", default="1,64,64", help="synthetic image shape C,H,W")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--single-rows", type=int, default=2000, help="random rows per timed call")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="timing per row")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--rows", help="comma-separated row names to run (default: all)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for tests")
    args = parser.parse_args(argv)
    if args.smoke:
        args.num_examples, args.image_shape, args.batch_size = 96, "1,16,16", 32
        args.single_rows, args.min_seconds = 16, 0.0
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        if args.dataset:
            source = args.dataset
        else:
            shape = tuple(int(s) for s in args.image_shape.split(","))
            num_shards = max(1, args.num_examples // 4096)
            source = str(build_synthetic(Path(scratch) / "synthetic", args.num_examples, shape, num_shards))
        dataset = load_lensing_dataset(source, cache_dir=Path(scratch) / "cache")["train"]
        rows = benchmarks(dataset, args.batch_size, args.num_workers, args.single_rows)
        selected = args.rows.split(",") if args.rows else list(rows)
        unknown = sorted(set(selected) - set(rows))
        if unknown:
            parser.error(f"unknown rows {unknown}; known: {list(rows)}")
        results = {name: rate(rows[name], args.min_seconds) for name in selected}
        shape = tuple(dataset.features["pixel_values"].shape)
        report = {
            "device": cpu_name(),
            "cpu_count": torch.get_num_threads(),
            "date": datetime.date.today().isoformat(),
            "command": "python bench/bench_data.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "dataset": args.dataset or f"synthetic, {len(dataset)} images",
            "image_shape": list(shape),
            "batch_size": args.batch_size,
            "num_workers": args.num_workers,
            "images_per_second": results,
        }
    print(
        f"{report['device']}, {report['cpu_count']} threads, {report['dataset']} of {shape}, batch {args.batch_size}"
    )
    print("| access | images/s |\n|---|---:|")
    for name, value in results.items():
        print(f"| {name} | {value:,.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
