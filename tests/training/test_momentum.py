"""`MomentumEncoderCallback`: the EMA update of BYOL's target and DINO's teacher, its cosine momentum schedule,
DINO's teacher-temperature warm-up, and a Trainer run replayed by hand."""

import math
import sys
from pathlib import Path

import pytest
import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState

from hf_deeplense.models.byol import DeepLenseBYOLModel
from hf_deeplense.models.dino import DeepLenseDINOModel
from hf_deeplense.training.arguments import LensingTrainingArguments
from hf_deeplense.training.callbacks import MomentumEncoderCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from ssl_helpers import tiny_ssl_config  # noqa: E402


def parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [parameter.detach().clone() for parameter in module.parameters()]


def paper_momentum(base: float, step: int, max_steps: int) -> float:
    """BYOL Sec. 3.2: tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2, k the step, over the K - 1 updates after
    the first."""
    return 1 - (1 - base) * (math.cos(math.pi * step / (max_steps - 1)) + 1) / 2


def test_momentum_schedule_is_a_cosine_from_the_base_momentum_to_one():
    callback = MomentumEncoderCallback()
    assert callback.momentum(0.99, 0, 101) == pytest.approx(0.99)  # first update
    assert callback.momentum(0.99, 50, 101) == pytest.approx((0.99 + 1) / 2)  # middle
    assert callback.momentum(0.99, 100, 101) == pytest.approx(1.0)  # last update
    for step in (1, 17, 73, 99):
        assert callback.momentum(0.99, step, 101) == pytest.approx(paper_momentum(0.99, step, 101))
    values = [callback.momentum(0.996, step, 20) for step in range(20)]
    assert values == sorted(values)  # rises monotonically


def test_one_update_is_the_exponential_moving_average():
    torch.manual_seed(0)
    model = DeepLenseBYOLModel(tiny_ssl_config("deeplense_byol", "vit", momentum=0.9))
    with torch.no_grad():  # an online network that has moved away from the target
        for parameter in [*model.backbone.parameters(), *model.projection_head.parameters()]:
            parameter.add_(torch.randn_like(parameter))
    online = [parameters(online) for online, _ in model.momentum_pairs()]
    target = [parameters(target) for _, target in model.momentum_pairs()]
    state = TrainerState(global_step=1, max_steps=10)  # after the first optimizer step: momentum 0.9
    MomentumEncoderCallback().on_step_end(None, state, TrainerControl(), model=model)
    for (_, updated), online_values, target_values in zip(model.momentum_pairs(), online, target):
        for new, student, teacher in zip(updated.parameters(), online_values, target_values):
            torch.testing.assert_close(new, 0.9 * teacher + 0.1 * student)
            assert not new.requires_grad
    for (online_module, _), before in zip(model.momentum_pairs(), online):  # the online network is unchanged
        assert all(torch.equal(a, b) for a, b in zip(online_module.parameters(), before))


def test_step_begin_sets_dinos_teacher_temperature():
    model = DeepLenseDINOModel(tiny_ssl_config("deeplense_dino", "vit"))  # 0.04 -> 0.07 over 30% of the steps
    callback = MomentumEncoderCallback()
    for step, expected in ((0, 0.04), (15, 0.055), (30, 0.07), (90, 0.07)):
        callback.on_step_begin(
            None, TrainerState(global_step=step, max_steps=100), TrainerControl(), model=model
        )
        assert model.teacher_temperature == pytest.approx(expected)


class RecordOnline(TrainerCallback):
    """Copies the online network after every optimizer step (placed before the momentum callback)."""

    def __init__(self):
        self.online = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.online.append([parameters(online) for online, _ in model.momentum_pairs()])


def test_a_trainer_run_updates_the_teacher_after_every_step(tmp_path):
    """4 steps of DINO under `Trainer`: the teacher gets no gradient, and equals the EMA of the recorded students
    computed by hand with the paper's schedule."""
    torch.manual_seed(0)
    model = DeepLenseDINOModel(tiny_ssl_config("deeplense_dino", "cnn", image_size=32, momentum=0.8))
    teacher = initial = [parameters(ema) for _, ema in model.momentum_pairs()]
    generator = torch.Generator().manual_seed(0)
    rows = [
        {
            "pixel_values": image,
            "pixel_values_2": image.flip(-1) + 0.1 * torch.randn(image.shape, generator=generator),
        }
        for image in torch.randn(32, 1, 32, 32, generator=generator)
    ]
    recorder = RecordOnline()
    args = LensingTrainingArguments(
        str(tmp_path), max_steps=4, per_device_train_batch_size=8, save_strategy="no", report_to="none"
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=rows, callbacks=[recorder, MomentumEncoderCallback()]
    )
    trainer.train()
    assert len(recorder.online) == 4
    for step, online in enumerate(recorder.online):
        momentum = paper_momentum(0.8, step, 4)
        teacher = [
            [momentum * t + (1 - momentum) * s for t, s in zip(teacher_values, online_values)]
            for teacher_values, online_values in zip(teacher, online)
        ]
    for (_, ema), expected in zip(model.momentum_pairs(), teacher):
        for parameter, value in zip(ema.parameters(), expected):
            torch.testing.assert_close(parameter, value)
            assert not parameter.requires_grad and parameter.grad is None
    assert not all(torch.equal(a, b) for a, b in zip(initial[0], teacher[0]))  # the teacher moved
