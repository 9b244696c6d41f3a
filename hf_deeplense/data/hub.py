"""Publish a dataset folder (Parquet shards + card) to the Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi

from .writer import list_shards


def publish_dataset(
    dataset_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | bool | None = None,
    delete_stale_shards: bool = True,
) -> CommitInfo:
    """Upload a dataset folder written by `write_split` + `write_dataset_card` as a dataset repo.

    Args:
        dataset_dir: folder with `README.md` and `data/{split}-*.parquet`.
        repo_id: `org/name` of the dataset repo (created if missing).
        private: create the repo private.
        revision: branch to commit to (default `main`).
        commit_message: default "Upload <folder name> with hf_deeplense".
        token: Hub token (default: the saved login).
        delete_stale_shards: delete remote `data/*.parquet` files that are not in this upload
            (a re-publish with another shard count would otherwise leave old shards in the glob).

    Returns:
        The `CommitInfo` of the upload commit. Hidden files (temporaries) are not uploaded.
    """
    dataset_dir = Path(dataset_dir)
    if not (dataset_dir / "README.md").is_file() or not list_shards(dataset_dir):
        raise FileNotFoundError(
            f"{dataset_dir} is not a dataset folder: it needs README.md and data/{{split}}-*.parquet "
            "(write_split + write_dataset_card)"
        )
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True).repo_id
    return api.upload_folder(
        folder_path=dataset_dir,
        repo_id=repo_id,
        repo_type="dataset",
        revision=revision,
        commit_message=commit_message or f"Upload {dataset_dir.name} with hf_deeplense",
        ignore_patterns=[".*", "**/.*"],
        delete_patterns=["data/*.parquet"] if delete_stale_shards else None,
    )
