"""Load a lensing dataset from a local folder or a Hub repo (offline from the cache too)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datasets import DatasetDict, load_dataset
from huggingface_hub import snapshot_download


def _is_dataset_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "README.md").is_file() or (path / "data").is_dir())


def load_lensing_dataset(
    dir_or_repo_id: str | os.PathLike,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    **load_kwargs: Any,
) -> DatasetDict:
    """Load a dataset in the hf_deeplense format (Parquet shards + card, docs/ARCHITECTURE.md).

    Args:
        dir_or_repo_id: a local dataset folder, or a Hub dataset repo id (`org/name`).
        revision: branch, tag or commit of a Hub repo (not allowed for a local folder).
        cache_dir: `datasets` cache for the prepared Arrow files (default: the `datasets` cache).
        token: Hub token for private repos.
        **load_kwargs: passed to `datasets.load_dataset` (`split=` then returns a `Dataset`).

    Returns:
        A `DatasetDict` with the splits of the dataset (`train`, `validation`, `test`).

    A repo id is fetched with `snapshot_download(repo_type="dataset")` and the snapshot folder is
    loaded: unlike `load_dataset("org/name")` this also works offline (`HF_HUB_OFFLINE=1`) once the
    repo is in the Hub cache.
    """
    path = Path(dir_or_repo_id).expanduser()
    if _is_dataset_dir(path):
        if revision is not None:
            raise ValueError(f"revision={revision!r} applies to Hub repos, not to the local folder {path}")
        folder = path
    elif path.exists():
        raise FileNotFoundError(f"{path} is not a dataset folder (no README.md and no data/)")
    else:
        folder = Path(
            snapshot_download(str(dir_or_repo_id), repo_type="dataset", revision=revision, token=token)
        )
    return load_dataset(str(folder), cache_dir=None if cache_dir is None else str(cache_dir), **load_kwargs)
