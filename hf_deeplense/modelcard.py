"""Model cards for DeepLense checkpoints: Hub metadata (YAML) + a body that says what the model is and how to load it.

```python
card = build_model_card(
    model.config,
    repo_id="org/deeplense-vit-model-ii",
    description="ViT trained on Model II (Euclid-like) simulations.",
    datasets=["org/deeplense-model-ii"],
    metrics={"accuracy": 0.93, "roc_auc_macro": 0.99},
    training_config={"learning_rate": 3e-4, "epochs": 30},
    plots={"ROC curves": "plots/roc.png"},
)
card.save(output_dir / "README.md")               # next to the weights, or:
push_model_card(card, "org/deeplense-vit-model-ii")   # uploaded with HfApi.upload_file
```

`ModelCard.push_to_hub` first validates the card online; `push_model_card` uploads it with `upload_file`
instead (the Hub still checks the YAML on commit), which also works with `testing_utils.local_hub`.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, Literal

import yaml
from huggingface_hub import CommitInfo, EvalResult, HfApi, ModelCard, ModelCardData
from transformers import PreTrainedConfig

__all__ = ["DEFAULT_TAGS", "build_model_card", "push_model_card"]

DEFAULT_TAGS = ["lensing", "dark-matter", "deeplense", "strong-lensing", "hf_deeplense"]

Task = Literal["image-classification", "regression", "pretraining"]

_AUTO_CLASS = {
    "image-classification": "transformers.AutoModelForImageClassification",
    "regression": "hf_deeplense.AutoModelForLensRegression",
    "pretraining": "transformers.AutoModelForPreTraining",
}


def _check_relative_path(path: str) -> str:
    posix = PurePosixPath(path)
    if posix.is_absolute() or ".." in posix.parts or "\\" in path or ":" in path:
        raise ValueError(f"plot path {path!r} must be relative to the repo root (e.g. 'plots/roc.png')")
    return posix.as_posix()


def _how_to_load(repo_id: str, task: Task) -> str:
    module, auto_class = _AUTO_CLASS[task].rsplit(".", 1)
    imports = f"from {module} import {auto_class}\n" if module == "transformers" else ""
    qualified = auto_class if module == "transformers" else f"hf_deeplense.{auto_class}"
    lines = [
        "```python",
        "import hf_deeplense  # registers the DeepLense models and LensImageProcessor with the Auto classes",
        f"{imports}from transformers import AutoImageProcessor",
        "",
        f'model = {qualified}.from_pretrained("{repo_id}")',
        f'processor = AutoImageProcessor.from_pretrained("{repo_id}")',
        'inputs = processor(images, return_tensors="pt")  # numpy/torch (H, W), (C, H, W), batches, lists',
        "outputs = model(**inputs)",
        "```",
        "",
        "From the command line: `hf-deeplense predict --model "
        + repo_id
        + " images/ --output predictions.csv`.",
        "",
        "Without hf_deeplense installed, the modelling code saved next to the weights loads with",
        f'`trust_remote_code=True` (e.g. `AutoImageProcessor.from_pretrained("{repo_id}", trust_remote_code=True)`).',
    ]
    return "\n".join(lines)


def _describe_config(config: PreTrainedConfig, task: Task) -> list[str]:
    classes = f" ({', '.join(config.architectures)})" if config.architectures else ""
    lines = [f"- architecture: `{config.model_type}`{classes}"]
    for key in (
        "image_size",
        "num_channels",
        "patch_size",
        "hidden_size",
        "num_hidden_layers",
        "architecture",
    ):
        if hasattr(config, key):
            lines.append(f"- {key}: {getattr(config, key)}")
    if task == "image-classification":
        labels = [config.id2label[index] for index in sorted(config.id2label)]
        lines.append(f"- classes ({len(labels)}): {', '.join(labels)}")
    if task == "regression":
        lines.append(
            f"- regression targets: {getattr(config, 'num_targets', 1)} (outputs are in physical units)"
        )
    return lines


def build_model_card(
    config: PreTrainedConfig,
    *,
    repo_id: str,
    task: Task = "image-classification",
    description: str = "",
    datasets: list[str] | None = None,
    metrics: dict[str, float] | None = None,
    dataset_name: str | None = None,
    dataset_split: str = "test",
    training_config: dict[str, Any] | None = None,
    plots: dict[str, str] | None = None,
    license: str = "apache-2.0",
    tags: list[str] | None = None,
    base_model: str | None = None,
) -> ModelCard:
    """Build the model card of a DeepLense checkpoint.

    Args:
        config: the model's config (architecture, image size, classes are read from it).
        repo_id: Hub id the card describes (`org/name`), used in the loading example.
        task: `"image-classification"`, `"regression"` or `"pretraining"`; picks the Auto class shown and the
            `model-index` task type.
        description: free text placed under the title (what was trained on what, and why).
        datasets: Hub dataset ids the model was trained/evaluated on (YAML `datasets`).
        metrics: metric name -> value on `dataset_split` of `datasets[0]` (or `dataset_name`); written as
            `model-index` results (shown on the Hub) and as a table in the body.
        dataset_name: display name of the evaluation dataset; defaults to `datasets[0]`.
        dataset_split: split the metrics were computed on.
        training_config: hyper-parameters; shown as a YAML block.
        plots: caption -> image path relative to the repo root (`"plots/roc.png"`), embedded as image links;
            upload the files next to the card.
        license: SPDX-style license id for the YAML header.
        tags: extra tags added to `DEFAULT_TAGS`.
        base_model: Hub id of the checkpoint this one was fine-tuned from (e.g. an MAE encoder).

    Returns:
        `huggingface_hub.ModelCard`; `str(card)` is the README.md text.
    """
    if task not in _AUTO_CLASS:
        raise ValueError(f"task must be one of {sorted(_AUTO_CLASS)}, got {task!r}")
    model_name = repo_id.split("/")[-1]
    eval_results = None
    if metrics:
        eval_dataset = dataset_name or (datasets[0] if datasets else None)
        if eval_dataset is None:
            raise ValueError(
                "metrics need the dataset they were computed on: pass datasets=[...] or dataset_name"
            )
        eval_results = [
            EvalResult(
                task_type="image-classification" if task == "image-classification" else task,
                dataset_type=datasets[0] if datasets else eval_dataset,
                dataset_name=eval_dataset,
                dataset_split=dataset_split,
                metric_type=name,
                metric_value=float(value),
            )
            for name, value in metrics.items()
        ]
    card_data = ModelCardData(
        model_name=model_name,
        license=license,
        library_name="hf_deeplense",
        tags=DEFAULT_TAGS + [tag for tag in (tags or []) if tag not in DEFAULT_TAGS],
        datasets=datasets,
        metrics=list(metrics) if metrics else None,
        eval_results=eval_results,
        pipeline_tag="image-classification" if task == "image-classification" else None,
        base_model=base_model,
    )

    body = [f"# {model_name}", ""]
    if description:
        body += [description.strip(), ""]
    body += [
        "A model for dark-matter substructure studies in strong gravitational lensing images, trained with",
        "hf_deeplense, the [ML4SCI DeepLense](https://github.com/ML4SCI/DeepLense) toolkit rebuilt on the Hugging Face stack.",
        "",
        "## Model",
        "",
        *_describe_config(config, task),
        "",
        "## How to use",
        "",
        _how_to_load(repo_id, task),
        "",
    ]
    if metrics:
        body += [
            f"## Results ({dataset_name or datasets[0]}, split `{dataset_split}`)",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        body += [f"| {name} | {float(value):.4f} |" for name, value in metrics.items()]
        body.append("")
    if training_config:
        # JSON round trip: tuples, numpy scalars and Paths become plain YAML
        plain = json.loads(json.dumps(training_config, default=str))
        body += [
            "## Training configuration",
            "",
            "```yaml",
            yaml.safe_dump(plain, sort_keys=True).strip(),
            "```",
            "",
        ]
    if plots:
        body += ["## Plots", ""]
        for caption, path in plots.items():
            body += [f"![{caption}]({_check_relative_path(path)})", ""]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(body))


def push_model_card(
    card: ModelCard,
    repo_id: str,
    *,
    token: str | bool | None = None,
    revision: str | None = None,
    commit_message: str = "Update model card",
) -> CommitInfo:
    """Upload `card` as the repo's README.md with `HfApi.upload_file` (no online pre-validation step)."""
    return HfApi().upload_file(
        path_or_fileobj=str(card).encode(),
        path_in_repo="README.md",
        repo_id=repo_id,
        token=token,
        revision=revision,
        commit_message=commit_message,
    )
