"""The evaluation of a saved pre-trained encoder: kNN classification of its frozen embeddings and their t-SNE map
(`evaluation.evaluate_encoder`), optionally followed by a linear probe (`training.finetune` with
`--init_from CHECKPOINT --linear_probe true`): the one-checkpoint form of a study's `<ssl>_knn` and
`<ssl>_linear_probe` rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..evaluation import evaluate_encoder
from ..evaluation.report import json_safe
from ..training import finetune

__all__ = ["evaluate_pretrained"]


def evaluate_pretrained(
    checkpoint: str | os.PathLike,
    dataset: str | os.PathLike | Mapping,
    output_dir: str | os.PathLike,
    *,
    linear_probe_args: Sequence[str] | None = None,
    **knn_kwargs: Any,
) -> dict[str, float]:
    """kNN evaluation (`evaluation.evaluate_encoder`) of a saved pre-trained model, optionally followed by a
    linear probe, and `output_dir/metrics.json`.

    Args:
        checkpoint: the pre-trained model (folder or Hub id) with its image processor.
        dataset: a dataset folder or Hub id (or, without a linear probe, a mapping of splits).
        output_dir: receives `metrics.json`, `plots/` and the linear probe's run in `linear_probe/`.
        linear_probe_args: given (e.g. `["--config", "recipes/configs/finetune_model_ii.yaml"]`), also run
            `finetune` with `--init_from checkpoint --linear_probe true --dataset dataset` and these arguments;
            its metrics join with the prefix `linear_probe_` (`linear_probe_test_auc_macro`, ...).
        **knn_kwargs: arguments of `evaluate_encoder` (`eval_split`, `k`, `temperature`, `device`, ...).
    """
    output_dir = Path(output_dir)
    report = evaluate_encoder(checkpoint, dataset, output_dir=output_dir, **knn_kwargs)
    metrics = dict(report.metrics)
    if linear_probe_args is not None:
        probe = finetune(
            [
                *linear_probe_args,
                *("--init_from", str(checkpoint), "--linear_probe", "true", "--dataset", str(dataset)),
                *("--output_dir", str(output_dir / "linear_probe")),
            ]
        )
        metrics.update({f"linear_probe_{key}": value for key, value in probe.items()})
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2, sort_keys=True))
    return metrics
