"""DeepLense DINO: the shared model tester (CNN backbone, two global + two local crops), the other backbones,
the loss against lightly's and a hand-written reference, centring, the teacher-temperature warm-up, the frozen
EMA teacher, remote code and fine-tuning of the teacher backbone."""

import numpy as np
import pytest
import torch
from lightly.loss import DINOLoss
from ssl_helpers import (
    SSLTesterMixin,
    assert_backbone_loads_into_heads,
    assert_heads_load_as_remote_code,
    second_view,
    tiny_ssl_config,
)
from test_modeling_common import ModelTesterMixin
from transformers import AutoModel

from hf_deeplense.models.dino import DeepLenseDINOConfig, DeepLenseDINOModel, dino_loss, updated_center


class TestDeepLenseDINO(SSLTesterMixin, ModelTesterMixin):
    config_class = DeepLenseDINOConfig
    invalid_config_kwargs = [
        ({"backbone_config": {"model_type": "deeplense_mae"}}, "backbone_config"),
        ({"teacher_temperature": 0.0}, "teacher_temperature"),
        ({"out_dim": 0}, "out_dim"),
        ({"momentum": 1.5}, "momentum"),
        ({"center_momentum": -0.1}, "center_momentum"),
    ]

    def prepare_inputs(self, auto_name, config, labels=False):
        inputs = super().prepare_inputs(auto_name, config, labels)
        if "pixel_values_2" in inputs:  # two local crops per image, seen by the student only
            pixel_values = inputs["pixel_values"]
            inputs["local_pixel_values"] = torch.stack(
                [pixel_values.flip(-2), pixel_values.rot90(1, (2, 3))], 1
            )
        return inputs

    def check_pretraining_output(self, output, config, inputs):
        batch_size = inputs["pixel_values"].shape[0]
        assert output.loss.ndim == 0
        assert output.student_logits.shape == (4, batch_size, config.out_dim)  # 2 global + 2 local crops
        assert output.teacher_logits.shape == (2, batch_size, config.out_dim)
        assert (
            output.embeddings.shape == output.embeddings_2.shape and output.embeddings.shape[0] == batch_size
        )


def reference_dino_loss(student, teacher, center, student_temperature, teacher_temperature):
    """Algorithm 1 of DINO (Caron et al. 2021) written the slow way: for every teacher global crop t and every
    other student crop s, the mean over images of H(P_t, P_s) = -sum_k P_t[k] log P_s[k]."""

    def softmax(values):
        values = values - values.max()
        return np.exp(values) / np.exp(values).sum()

    terms = []
    for t in range(teacher.shape[0]):
        for s in range(student.shape[0]):
            if s == t:
                continue
            for b in range(teacher.shape[1]):
                p_teacher = softmax((teacher[t, b] - center) / teacher_temperature)
                p_student = softmax(student[s, b] / student_temperature)
                terms.append(-(p_teacher * np.log(p_student)).sum())
    return float(np.mean(terms))


@pytest.mark.parametrize("num_local_crops", [0, 3])
def test_dino_loss_matches_lightly_and_a_hand_written_reference(num_local_crops):
    generator = torch.Generator().manual_seed(num_local_crops)
    student = torch.randn(2 + num_local_crops, 5, 7, generator=generator)
    teacher = torch.randn(2, 5, 7, generator=generator)
    center = 0.3 * torch.randn(7, generator=generator)
    loss = dino_loss(student, teacher, center, 0.1, 0.04)
    expected = reference_dino_loss(
        student.double().numpy(), teacher.double().numpy(), center.double().numpy(), 0.1, 0.04
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    lightly_loss = DINOLoss(output_dim=7, teacher_temp=0.04, student_temp=0.1)
    lightly_loss.center.copy_(center.view(1, 1, 7))
    assert loss.item() == pytest.approx(lightly_loss(list(teacher), list(student)).item(), rel=1e-5)


def test_dino_loss_gradient_flows_to_the_student_only():
    student = torch.randn(4, 3, 6, requires_grad=True)
    teacher = torch.randn(2, 3, 6, requires_grad=True)
    dino_loss(student, teacher, torch.zeros(6), 0.1, 0.04).backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None


def test_center_is_an_exponential_moving_average_of_the_teacher_outputs():
    generator = torch.Generator().manual_seed(0)
    center, teacher = torch.randn(6, generator=generator), torch.randn(2, 4, 6, generator=generator)
    torch.testing.assert_close(
        updated_center(center, teacher, 0.9), 0.9 * center + 0.1 * teacher.mean((0, 1))
    )
    model = DeepLenseDINOModel(tiny_ssl_config("deeplense_dino", "vit"))
    pixel_values = torch.randn(4, 1, 30, 30)
    with torch.no_grad():
        model.eval()(pixel_values, second_view(pixel_values))
        assert torch.equal(model.center, torch.zeros(32))  # evaluation leaves the centre alone
        output = model.train()(pixel_values, second_view(pixel_values))
    torch.testing.assert_close(model.center, 0.1 * output.teacher_logits.mean((0, 1)))


def test_teacher_temperature_warms_up_linearly():
    model = DeepLenseDINOModel(tiny_ssl_config("deeplense_dino", "vit"))  # 0.04 -> 0.07 over 30% of training
    assert model.teacher_temperature == 0.04
    for progress, expected in ((0.0, 0.04), (0.15, 0.055), (0.3, 0.07), (1.0, 0.07)):
        model.set_training_progress(progress)
        assert model.teacher_temperature == pytest.approx(expected)
    no_warmup = DeepLenseDINOModel(
        tiny_ssl_config("deeplense_dino", "vit", warmup_teacher_temperature_fraction=0.0)
    )
    no_warmup.set_training_progress(0.0)
    assert no_warmup.teacher_temperature == pytest.approx(0.07)


def test_teacher_starts_as_the_student_and_receives_no_gradient(tmp_path):
    torch.manual_seed(0)
    model = DeepLenseDINOModel(tiny_ssl_config("deeplense_dino", "vit")).train()
    for student, teacher in model.momentum_pairs():
        for student_parameter, teacher_parameter in zip(student.parameters(), teacher.parameters()):
            assert torch.equal(student_parameter, teacher_parameter) and not teacher_parameter.requires_grad
    pixel_values = torch.randn(4, 1, 30, 30)
    model(pixel_values, second_view(pixel_values)).loss.backward()
    assert all(parameter.grad is None for parameter in model.backbone.parameters())
    assert all(parameter.grad is None for parameter in model.teacher_head.parameters())
    assert all(parameter.grad is not None for parameter in model.student_backbone.parameters())
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert not any(parameter.requires_grad for parameter in loaded.backbone.parameters())
    assert all(parameter.requires_grad for parameter in loaded.student_backbone.parameters())
    assert torch.equal(loaded.center, model.center)


@pytest.mark.parametrize("backbone", ["vit", "hybrid", "equivariant"])
def test_other_backbones_train(backbone):
    torch.manual_seed(0)
    model = DeepLenseDINOModel(tiny_ssl_config("deeplense_dino", backbone)).train()
    pixel_values = torch.randn(4, 1, 30, 30)
    local = torch.stack([pixel_values.flip(-1)] * 2, dim=1)  # (batch, 2 local crops, C, H, W)
    output = model(pixel_values, second_view(pixel_values), local_pixel_values=local)
    assert output.student_logits.shape == (4, 4, 32)
    output.loss.backward()
    assert all(parameter.grad is not None for parameter in model.student_backbone.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["vit", "equivariant"])
def test_remote_code_without_package_for_other_backbones(backbone, tmp_path, fresh_python):
    tester = TestDeepLenseDINO()
    tester.backbone = backbone
    tester.test_remote_code_without_package(tmp_path, fresh_python)


@pytest.mark.parametrize("backbone", ["cnn", "vit", "hybrid", "equivariant"])
def test_teacher_backbone_loads_into_the_heads(backbone, tmp_path):
    assert_backbone_loads_into_heads(trained_dino(backbone), tmp_path / "dino")


@pytest.mark.slow
def test_heads_load_the_teacher_as_remote_code(tmp_path, fresh_python):
    assert_heads_load_as_remote_code(trained_dino("vit"), tmp_path, fresh_python)


def trained_dino(backbone: str) -> DeepLenseDINOModel:
    torch.manual_seed(0)
    model = DeepLenseDINOModel(tiny_ssl_config("deeplense_dino", backbone))
    with torch.no_grad():  # a teacher that differs from the student, as after training
        for parameter in model.student_backbone.parameters():
            parameter.add_(0.1)
    return model
