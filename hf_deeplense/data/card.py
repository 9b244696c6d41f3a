"""Dataset card (README.md) for a lensing dataset folder written by `writer.py`.

The card is computed from the shards themselves (splits, features, counts per split and class),
so it always matches the data. Its YAML header carries `configs` / `data_files` (how
`load_dataset(DIR)` and the Hub find the shards) and `dataset_info` (features and split sizes);
the body carries the class names, counts, and free-form generation or conversion parameters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml
from datasets import ClassLabel, DatasetInfo, Features, SplitDict, SplitInfo

from .writer import SPLITS, list_shards

DEFAULT_TAGS = ("gravitational-lensing", "dark-matter", "astronomy", "physics", "deeplense")


def _split_order(split: str) -> tuple[int, str]:
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)


def read_features(shard: str | os.PathLike) -> Features:
    """The `datasets.Features` stored in a shard's schema metadata."""
    return Features.from_arrow_schema(pq.read_schema(shard))


def dataset_statistics(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Splits, features and counts of the dataset under `out_dir/data`.

    Returns:
        dict with `features` (`Features`), `class_names` (list or None), `splits` (ordered dict
        split -> {`num_examples`, `num_bytes`, `num_shards`, `per_class` {name: count}}).

    Raises:
        FileNotFoundError: no shard under `out_dir/data`.
        ValueError: the splits do not share the same features.
    """
    shards = list_shards(out_dir)
    if not shards:
        raise FileNotFoundError(f"no shard {out_dir}/data/{{split}}-XXXXX-of-YYYYY.parquet found")
    features: Features | None = None
    splits: dict[str, dict[str, Any]] = {}
    for split in sorted(shards, key=_split_order):
        num_examples, num_bytes, labels = 0, 0, []
        for path in shards[split]:
            shard_features = read_features(path)
            if features is None:
                features = shard_features
            elif shard_features != features:
                raise ValueError(f"{path} has features {shard_features}, other shards have {features}")
            metadata = pq.read_metadata(path)
            num_examples += metadata.num_rows
            num_bytes += sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
            if "label" in shard_features:
                labels.append(pq.read_table(path, columns=["label"])["label"].to_numpy())
        info: dict[str, Any] = {
            "num_examples": num_examples,
            "num_bytes": num_bytes,
            "num_shards": len(shards[split]),
        }
        label_feature = features.get("label")
        if isinstance(label_feature, ClassLabel):
            counts = (
                np.bincount(np.concatenate(labels), minlength=label_feature.num_classes) if labels else []
            )
            info["per_class"] = {name: int(c) for name, c in zip(label_feature.names, counts)}
        splits[split] = info
    label_feature = features.get("label")
    class_names = list(label_feature.names) if isinstance(label_feature, ClassLabel) else None
    return {"features": features, "class_names": class_names, "splits": splits}


def _yaml_header(
    stats: Mapping[str, Any], license: str | None, tags: Sequence[str], task: str | None
) -> dict:
    split_dict = SplitDict()
    for split, info in stats["splits"].items():
        split_dict.add(SplitInfo(name=split, num_bytes=info["num_bytes"], num_examples=info["num_examples"]))
    dataset_info = DatasetInfo(features=stats["features"], splits=split_dict)._to_yaml_dict()
    dataset_info["dataset_size"] = sum(info["num_bytes"] for info in stats["splits"].values())
    header: dict[str, Any] = {}
    if license:
        header["license"] = license
    if task:
        header["task_categories"] = [task]
    header["tags"] = list(tags)
    header["configs"] = [
        {
            "config_name": "default",
            "data_files": [{"split": split, "path": f"data/{split}-*"} for split in stats["splits"]],
        }
    ]
    header["dataset_info"] = dataset_info
    return header


def _counts_table(stats: Mapping[str, Any]) -> str:
    splits = stats["splits"]
    class_names = stats["class_names"] or []
    lines = ["| class | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for name in class_names:
        lines.append(
            f"| {name} | " + " | ".join(str(info["per_class"][name]) for info in splits.values()) + " |"
        )
    lines.append("| **total** | " + " | ".join(str(info["num_examples"]) for info in splits.values()) + " |")
    return "\n".join(lines)


def render_dataset_card(
    out_dir: str | os.PathLike,
    *,
    title: str,
    description: str = "",
    parameters: Mapping[str, Any] | None = None,
    parameters_heading: str = "Generation parameters",
    summary: str | None = None,
    images: Sequence[tuple[str, str]] = (),
    extra_sections: Mapping[str, str] | None = None,
    license: str | None = "apache-2.0",
    tags: Sequence[str] = DEFAULT_TAGS,
    task: str | None = "image-classification",
) -> str:
    """The text of the dataset card of `out_dir` (see `write_dataset_card`)."""
    stats = dataset_statistics(out_dir)
    header = yaml.safe_dump(_yaml_header(stats, license, tags, task), sort_keys=False)
    features = stats["features"]
    shape = features["pixel_values"].shape if "pixel_values" in features else None
    extra_columns = [name for name in features if name not in ("pixel_values", "label")]
    body = [f"# {title}", ""]
    if description:
        body += [description.strip(), ""]
    body += ["## Contents", ""]
    if shape is not None:
        body.append(f"- `pixel_values`: float32 `{tuple(shape)}` (channels, height, width)")
    if stats["class_names"] is not None:
        body.append(f"- `label`: class id, names {stats['class_names']}")
    for name in extra_columns:
        body.append(f"- `{name}`: {features[name].dtype}")
    body += ["", "Examples per split and class:", "", _counts_table(stats), ""]
    body += [
        "## Usage",
        "",
        "```python",
        "from hf_deeplense.data import load_lensing_dataset",
        "",
        'dataset = load_lensing_dataset("path/or/repo_id")  # DatasetDict',
        "```",
        "",
        "or `datasets.load_dataset(path)` directly.",
        "",
    ]
    if images:
        body += ["## Examples", ""]
        body += [f"![{caption}]({path})" for path, caption in images]
        body.append("")
    if parameters:
        body += [
            f"## {parameters_heading}",
            "",
            "```json",
            json.dumps(parameters, indent=2, sort_keys=True, default=str),
            "```",
            "",
        ]
    if summary:
        body += ["## Summary", "", "```", summary.rstrip(), "```", ""]
    for heading, text in (extra_sections or {}).items():
        body += [f"## {heading}", "", text.strip(), ""]
    return f"---\n{header}---\n\n" + "\n".join(body)


def write_dataset_card(
    out_dir: str | os.PathLike,
    *,
    title: str,
    description: str = "",
    parameters: Mapping[str, Any] | None = None,
    parameters_heading: str = "Generation parameters",
    summary: str | None = None,
    images: Sequence[tuple[str, str]] = (),
    extra_sections: Mapping[str, str] | None = None,
    license: str | None = "apache-2.0",
    tags: Sequence[str] = DEFAULT_TAGS,
    task: str | None = "image-classification",
) -> Path:
    """Write `out_dir/README.md` from the shards under `out_dir/data` (atomically).

    Args:
        out_dir: dataset folder written by `write_split`.
        title: card title.
        description: free text under the title (Markdown).
        parameters: generation or conversion parameters, stored as a JSON block (values that are
            not JSON types are written with `str`).
        parameters_heading: heading of that block (e.g. "Conversion parameters").
        summary: free text (e.g. the converter's list of skipped files) in a code block.
        images: `(relative_path, caption)` pairs shown as Markdown images.
        extra_sections: more `{heading: markdown}` sections, in order.
        license, tags, task: card metadata (`task` goes to `task_categories`; None leaves it out).

    Returns:
        The path of the card.
    """
    text = render_dataset_card(
        out_dir,
        title=title,
        description=description,
        parameters=parameters,
        parameters_heading=parameters_heading,
        summary=summary,
        images=images,
        extra_sections=extra_sections,
        license=license,
        tags=tags,
        task=task,
    )
    path = Path(out_dir) / "README.md"
    tmp = path.with_name(f".README.md.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
