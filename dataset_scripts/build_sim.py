#!/usr/bin/env python
"""Simulate a DeepLense-style dataset and write it as Parquet shards + dataset card (resumable).

python dataset_scripts/build_sim.py --preset model_ii --n-per-class 1000 --out data/model_ii
"""

from __future__ import annotations

import argparse
import json
import logging

from hf_deeplense.data.build import build_simulated_dataset
from hf_deeplense.simulation import PRESETS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="model_ii", choices=sorted(PRESETS), help="simulation preset")
    parser.add_argument(
        "--n-per-class", type=int, default=1000, help="images per class over all splits together"
    )
    parser.add_argument("--train-frac", type=float, default=0.8)
    parser.add_argument("--val-frac", type=float, default=0.1)
    parser.add_argument("--test-frac", type=float, default=0.1)
    parser.add_argument("--image-size", type=int, default=None, help="override the preset's image size")
    parser.add_argument(
        "--classes", nargs="+", default=None, help="subset of the preset's classes, in label order"
    )
    parser.add_argument(
        "--lens-fraction", type=float, default=None, help="lens fraction (lens_finding preset)"
    )
    parser.add_argument(
        "--overrides",
        type=json.loads,
        default=None,
        help='more SimulationConfig fields as JSON, e.g. \'{"psf_fwhm": [0.3], "exposure_time": [100.0]}\'',
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=1000, help="at most this many images per shard")
    parser.add_argument("--out", required=True, help="output dataset folder")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO", help="publish to this dataset repo id")
    parser.add_argument("--no-card", action="store_true", help="skip the card (sample grid and baseline)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = build_simulated_dataset(
        args.out,
        args.preset,
        args.n_per_class,
        (args.train_frac, args.val_frac, args.test_frac),
        seed=args.seed,
        image_size=args.image_size,
        classes=args.classes,
        lens_fraction=args.lens_fraction,
        overrides=args.overrides,
        device=args.device,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        write_card=not args.no_card,
        push_to_hub=args.push_to_hub,
    )
    print(f"dataset written to {out}")


if __name__ == "__main__":
    main()
