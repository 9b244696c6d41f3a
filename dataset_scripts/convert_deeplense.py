"""Convert a downloaded DeepLense `.npy` folder into a Hugging Face dataset (Parquet + card).

    python dataset_scripts/convert_deeplense.py ~/Downloads/Model_I --out data/model_i --allow-pickle
    python dataset_scripts/convert_deeplense.py dataset/ --out data/common_test_i --layout common_test_i
    python dataset_scripts/convert_deeplense.py ~/Downloads/Model_II_test --out data/model_ii_test --split test \
        --allow-pickle
    python dataset_scripts/convert_deeplense.py real_lenses/ --out data/real_lenses --allow-pickle \
        --split-file DeepLense_SSL/input/indices.pkl

The layout is detected from the folder structure (or named with --layout); see
`hf_deeplense.data.LAYOUTS`. Files that cannot be converted are skipped and listed at the end.
"""

from __future__ import annotations

import argparse
import sys

from hf_deeplense.data import LAYOUTS, SPLITS, LayoutError, convert_deeplense, publish_dataset
from hf_deeplense.data.convert import ALLOW_PICKLE_WARNING


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", help="the DeepLense folder to convert")
    parser.add_argument("--out", required=True, help="output dataset folder")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="folder layout (default: detected)")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load object arrays ([image, mass] axion files) and published split pickles (indices.pkl); "
        "unpickling runs code: only for trusted files",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split assignment")
    parser.add_argument(
        "--val-frac", type=float, default=0.1, help="validation fraction when the layout has none"
    )
    parser.add_argument(
        "--test-frac",
        type=float,
        default=0.1,
        help="test fraction when the layout has none (val + test may reach 1.0: --val-frac 0 --test-frac 1 "
        "makes the whole folder a test split)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        help="put the whole folder into this one split (e.g. an official test folder)",
    )
    parser.add_argument(
        "--val-folder-split",
        choices=["validation", "test"],
        help="the split a layout's val/ folder becomes (default: test for Common Test I, whose results are "
        "reported on val/; validation for Model IV)",
    )
    parser.add_argument(
        "--split-file",
        help="real-lens SSL: the published indices.pkl (default: SRC/indices.pkl or SRC/input/indices.pkl); "
        "train_indices_N.pkl beside it become labelled_N columns (needs --allow-pickle)",
    )
    parser.add_argument("--class-names", help="comma-separated class names (flat_array and stacked layouts)")
    parser.add_argument("--examples-per-shard", type=int, help="rows per Parquet shard (default ~128 MiB)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also publish the dataset to this Hub repo id")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    args = parser.parse_args(argv)
    if args.allow_pickle:
        print(f"warning: {ALLOW_PICKLE_WARNING}", file=sys.stderr)
    try:
        result = convert_deeplense(
            args.src,
            args.out,
            layout=args.layout,
            allow_pickle=args.allow_pickle,
            seed=args.seed,
            val_frac=args.val_frac,
            test_frac=args.test_frac,
            split=args.split,
            val_folder_split=args.val_folder_split,
            split_file=args.split_file,
            class_names=args.class_names.split(",") if args.class_names else None,
            examples_per_shard=args.examples_per_shard,
        )
    except (LayoutError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.summary)
    print(f"wrote {result.out_dir}")
    if args.push_to_hub:
        commit = publish_dataset(result.out_dir, args.push_to_hub, private=args.private)
        print(f"published {commit.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
