"""`transformers.TrainerCallback`s for lensing runs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..evaluation.report import json_safe

__all__ = [
    "EvalHistoryJsonCallback",
    "ImageLoggingCallback",
    "MomentumEncoderCallback",
    "TrainingProgressCallback",
]


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


class TrainingProgressCallback(TrainerCallback):
    """Before every optimizer step, tells a model with `set_training_progress(fraction)` the fraction of training
    done (`global_step / max_steps`): DINO's teacher-temperature warm-up, DANN's gradient-reversal coefficient."""

    def on_step_begin(self, args, state: TrainerState, control: TrainerControl, model=None, **kwargs):
        if hasattr(model, "set_training_progress"):
            model.set_training_progress(state.global_step / max(state.max_steps, 1))


class MomentumEncoderCallback(TrainingProgressCallback):
    """The exponential-moving-average network of BYOL (target) and DINO (teacher): a model with `momentum_pairs()`.

    After every optimizer step `ema = m * ema + (1 - m) * online` for each (online, ema) module pair (lightly's
    `update_momentum`), with `m` on lightly's `cosine_schedule` from `model.config.momentum` at the first step to 1
    at the last: `m_k = 1 - (1 - m_base) (cos(pi k / (K - 1)) + 1) / 2` for steps `k = 0 .. K - 1`. As a
    `TrainingProgressCallback` it also tells DINO the training progress. The EMA weights are model weights, so
    checkpoints and resumed runs carry them.

    - [0] BYOL, 2020, https://arxiv.org/abs/2006.07733, Sec. 3.2 (the cosine momentum schedule)
    - [1] DINO, 2021, https://arxiv.org/abs/2104.14294, Sec. 3.1
    """

    def __init__(self):
        from lightly.models.utils import update_momentum  # lightly is imported by the runs that need it only
        from lightly.utils.scheduler import cosine_schedule

        self.update_momentum, self.cosine_schedule = update_momentum, cosine_schedule

    def momentum(self, base_momentum: float, step: int, max_steps: int) -> float:
        """The momentum of the update after optimizer step `step` (0-based) of `max_steps`."""
        return self.cosine_schedule(step, max_steps, base_momentum, 1.0)

    def on_step_end(self, args, state: TrainerState, control: TrainerControl, model=None, **kwargs):
        momentum = self.momentum(model.config.momentum, state.global_step - 1, state.max_steps)
        with torch.no_grad():
            for online, ema in model.momentum_pairs():
                self.update_momentum(online, ema, momentum)
