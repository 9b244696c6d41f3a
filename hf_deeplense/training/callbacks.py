"""`transformers.TrainerCallback`s for lensing runs."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

__all__ = ["EvalHistoryJsonCallback", "ImageLoggingCallback", "json_safe"]


def json_safe(value):
    """Floats that JSON cannot hold (NaN, inf) become None; numpy/torch scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class EvalHistoryJsonCallback(TrainerCallback):
    """Writes every evaluation's metrics (with step and epoch) to `output_dir/eval_history.json`.

    The file is rewritten after each evaluation on the main process, so it is complete even if a
    run is killed later.
    """

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics=None, **kwargs
    ):
        if not state.is_world_process_zero or not metrics:
            return
        history = [
            {
                "step": entry["step"],
                "epoch": entry.get("epoch"),
                **{k: v for k, v in entry.items() if k.startswith("eval_")},
            }
            for entry in state.log_history
            if any(key.startswith("eval_") for key in entry)
        ]
        if not history or history[-1]["step"] != state.global_step:
            history.append({"step": state.global_step, "epoch": state.epoch, **metrics})
        path = Path(args.output_dir) / "eval_history.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(json_safe(history), indent=2))
        os.replace(temporary, path)


class ImageLoggingCallback(TrainerCallback):
    """After each evaluation, draws a figure from the model and writes it to `output_dir/<subdir>/`.

    Also sends it to TensorBoard when the trainer reports there. Used for MAE reconstructions.

    Args:
        make_figure: `make_figure(model, path) -> str` writes a PNG to `path` and returns it.
        subdir: folder under the output dir.
        name: file stem; the PNG is `<name>-step<global_step>.png`.
    """

    def __init__(
        self, make_figure: Callable[[torch.nn.Module, str], str], subdir: str = "plots", name: str = "figure"
    ):
        self.make_figure = make_figure
        self.subdir = subdir
        self.name = name
        self.paths: list[str] = []

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kwargs
    ):
        if not state.is_world_process_zero or model is None:
            return
        path = Path(args.output_dir) / self.subdir / f"{self.name}-step{state.global_step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                written = self.make_figure(model, str(path))
        finally:
            model.train(was_training)
        self.paths.append(written)
        self._log_tensorboard(args, state, written)

    def _log_tensorboard(self, args: TrainingArguments, state: TrainerState, path: str) -> None:
        report_to = args.report_to if isinstance(args.report_to, list) else [args.report_to]
        if "tensorboard" not in report_to and "all" not in report_to:
            return
        import matplotlib.image
        from torch.utils.tensorboard import SummaryWriter

        image = matplotlib.image.imread(path)[..., :3]
        with SummaryWriter(log_dir=os.path.join(args.output_dir, "runs", "images")) as writer:
            writer.add_image(self.name, image, global_step=state.global_step, dataformats="HWC")
