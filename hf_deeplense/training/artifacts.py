"""Everything a run leaves in its output directory, and publishing it to the Hub.

```
output_dir/
    config.json, model.safetensors, configuration_*.py, modeling_*.py   # the best (or last) model
    preprocessor_config.json                                            # the LensImageProcessor
    metrics.json        # final metrics (flat, floats)
    run_config.yaml     # every argument of the run
    eval_history.json   # metrics of each evaluation (EvalHistoryJsonCallback)
    plots/*.png         # loss curves, ROC, confusion matrix, scatter, reconstructions, CAM
    README.md           # model card with a model-index of the metrics
    checkpoint-*/       # Trainer checkpoints (not published)
```
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import HfApi
from transformers import Trainer, TrainingArguments

from ..evaluation.plots import plot_loss_curves
from ..evaluation.report import json_safe
from ..modelcard import build_model_card

__all__ = ["arguments_to_dict", "finish_run", "hub_id_or_none", "push_run_to_hub", "take_push_to_hub"]

# Never published: Trainer checkpoints (optimizer states), tracker folders, temporaries.
PUBLISH_IGNORE = ["checkpoint-*/**", "runs/**", "wandb/**", "trackio/**", "*.tmp", "training_args.bin"]


def arguments_to_dict(*arguments: Any) -> dict[str, Any]:
    """One flat dict of the fields of argument dataclasses (`TrainingArguments.to_dict()`, without its tokens)."""
    merged: dict[str, Any] = {}
    for item in arguments:
        if isinstance(item, TrainingArguments):
            merged.update({key: value for key, value in item.to_dict().items() if not key.endswith("_token")})
        else:
            merged.update(dataclasses.asdict(item))
    return json.loads(json.dumps(json_safe(merged), default=str))


def hub_id_or_none(name: str | None) -> str | None:
    """`name` if it looks like a Hub repo id rather than a local path, else None (card metadata
    such as `base_model` must name Hub repos)."""
    if name is None or Path(name).exists() or name.count("/") != 1 or name.startswith((".", "/")):
        return None
    return name


def take_push_to_hub(training_args: TrainingArguments) -> str | None:
    """Turn off the Trainer's own pushing (it would replace our model card and push every
    checkpoint) and return the repo id the run should be published to at the end, or None."""
    if not training_args.push_to_hub:
        return None
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).name
    training_args.push_to_hub = False
    return repo_id


_NOT_MODEL_METRICS = ("runtime", "samples_per_second", "steps_per_second", "epoch")


def _card_metrics(metrics: dict[str, float], split: str) -> tuple[dict[str, float], str]:
    """The metrics of the card's model-index: those of `split` (`test_auc_macro` -> `auc_macro`), or
    else those of the validation evaluation (`eval_loss` -> `loss`); no timings, no NaN."""
    for prefix, split_name in ((f"{split}_", split), ("eval_", "validation")):
        chosen = {
            key[len(prefix) :]: value
            for key, value in metrics.items()
            if key.startswith(prefix) and not key.endswith(_NOT_MODEL_METRICS) and math.isfinite(value)
        }
        if chosen:
            return chosen, split_name
    return {}, split


def finish_run(
    trainer: Trainer,
    arguments: tuple[Any, ...],
    *,
    task: str,
    metrics: dict[str, float],
    headline: tuple[str, str] | None = None,
    image_processor: Any | None = None,
    plots: dict[str, str] | None = None,
    dataset: str | None = None,
    dataset_split: str = "test",
    description: str = "",
    repo_id: str | None = None,
    base_model: str | None = None,
) -> Path | None:
    """The end of every run: save the trainer's model (the best one with `load_best_model_at_end`) and the run's
    artifacts (see the module docstring) to `trainer.args.output_dir`, print the `headline` metric, and publish
    the folder to `repo_id` when there is one (`push_run_to_hub`).

    Call on every process (the model save synchronises them); everything else is done by the main process, which
    alone gets the output folder back (others get None).

    Args:
        trainer: the trained `Trainer`.
        arguments: the run's argument dataclasses, written to `run_config.yaml` (`arguments_to_dict`).
        task: `"image-classification"`, `"regression"` or `"pretraining"` (for the model card).
        metrics: final metrics (e.g. `test_auc_macro`), floats.
        headline: `(label, metrics key)` of the metric printed at the end.
        image_processor: saved next to the weights (`preprocessor_config.json`).
        plots: caption (`_` reads as a space) -> PNG path (absolute, relative to the working directory, or
            relative to the output dir); a loss-curve plot is added. The card links them relative to the output
            dir.
        dataset, dataset_split: where `metrics` were computed (a Hub id also goes into the card's `datasets`, a
            local folder only names it); the card's `model-index` lists the `<dataset_split>_*` metrics (or,
            without those, the `eval_*` ones of the validation split).
        description: text under the card's title.
        repo_id: the Hub repo the run is published to, also named in the card's loading example (default: the
            output folder's name, and no publishing).
        base_model: the checkpoint fine-tuned from.
    """
    output_dir = Path(trainer.args.output_dir)
    trainer.save_model(str(output_dir))
    if not trainer.is_world_process_zero():
        return None
    if image_processor is not None:
        image_processor.save_pretrained(str(output_dir))
    plots = dict(plots or {})
    plots["Loss curves"] = plot_loss_curves(
        trainer.state.log_history, output_dir / "plots" / "loss_curves.png"
    )
    relative_plots = {}
    for caption, path in plots.items():
        path = Path(path)
        # a relative path is taken from the working directory if it exists there, else from the output dir
        absolute = (path if path.is_absolute() or path.exists() else output_dir / path).resolve()
        relative_plots[caption.replace("_", " ")] = absolute.relative_to(output_dir.resolve()).as_posix()

    metrics = {key: float(value) for key, value in metrics.items()}
    (output_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2, sort_keys=True))
    run_config = arguments_to_dict(*arguments)
    (output_dir / "run_config.yaml").write_text(yaml.safe_dump(run_config, sort_keys=True))

    card_metrics, card_split = _card_metrics(metrics, dataset_split)
    hub_dataset = hub_id_or_none(dataset)
    card = build_model_card(
        trainer.model.config,
        repo_id=repo_id or output_dir.name,
        task=task,
        description=description,
        datasets=[hub_dataset] if hub_dataset else None,
        metrics=card_metrics or None,
        dataset_name=hub_dataset or dataset or output_dir.name,
        dataset_split=card_split,
        training_config=run_config,
        plots=relative_plots,
        base_model=base_model,
    )
    card.save(str(output_dir / "README.md"))
    if headline is not None and headline[1] in metrics:
        print(f"{headline[0]}: {metrics[headline[1]]:.4f}")
    print(f"outputs: {output_dir}")
    if repo_id:
        print(f"published: {push_run_to_hub(output_dir, repo_id, token=trainer.args.hub_token)}")
    return output_dir


def push_run_to_hub(output_dir: str | os.PathLike, repo_id: str, *, token: str | None = None) -> str:
    """Publish a run folder (weights, processor, card, metrics, plots; no Trainer checkpoints).

    Returns:
        The URL of the commit.
    """
    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(output_dir),
        repo_id=repo_id,
        ignore_patterns=PUBLISH_IGNORE,
        commit_message="Upload hf_deeplense run",
    )
    return commit.commit_url
