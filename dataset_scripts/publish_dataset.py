"""Publish a dataset folder (README.md + data/*.parquet) as a Hugging Face dataset repo.

python dataset_scripts/publish_dataset.py data/model_i my-org/deeplense-model-i [--private]
"""

from __future__ import annotations

import argparse
import sys

from hf_deeplense.data import publish_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", help="dataset folder written by hf_deeplense")
    parser.add_argument("repo", help="dataset repo id, org/name")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to commit to (default main)")
    parser.add_argument("--commit-message", help="commit message")
    args = parser.parse_args(argv)
    try:
        commit = publish_dataset(
            args.dir,
            args.repo,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
        )
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"published {commit.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
