"""Convert a downloaded DeepLense `.npy` folder into a Hugging Face dataset (Parquet + card).

    python dataset_scripts/convert_deeplense.py ~/Downloads/Model_I --out data/model_i --allow-pickle
    python dataset_scripts/convert_deeplense.py dataset/ --out data/common_test_i --layout common_test_i

The layout is detected from the folder structure (or named with --layout); see
`hf_deeplense.data.LAYOUTS`. Files that cannot be converted are skipped and listed at the end.
"""

from __future__ import annotations

import argparse
import sys

from hf_deeplense.data import LAYOUTS, LayoutError, convert_deeplense, publish_dataset


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
        help="load object arrays ([image, mass] axion files); unpickling runs code: only for trusted files",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split assignment")
    parser.add_argument(
        "--val-frac", type=float, default=0.1, help="validation fraction when the layout has none"
    )
    parser.add_argument("--test-frac", type=float, default=0.1, help="test fraction when the layout has none")
    parser.add_argument("--class-names", help="comma-separated class names (flat_array layout)")
    parser.add_argument("--examples-per-shard", type=int, help="rows per Parquet shard (default ~128 MiB)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also publish the dataset to this Hub repo id")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    args = parser.parse_args(argv)
    try:
        result = convert_deeplense(
            args.src,
            args.out,
            layout=args.layout,
            allow_pickle=args.allow_pickle,
            seed=args.seed,
            val_frac=args.val_frac,
            test_frac=args.test_frac,
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
