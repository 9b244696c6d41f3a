"""`data_on_device`: a split's images processed once into one tensor on the training device
(`DeviceLensingDataset`); the Trainer then reads the same batches as the default path, and runs end the same."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_deeplense import DeepLenseViTConfig, DeepLenseViTForImageClassification
from hf_deeplense.data import DeviceLensingDataset, LensingAugment, with_row_index
from hf_deeplense.training import finetune, pretrain_mae, pretrain_ssl
from hf_deeplense.training.arguments import LensingTrainingArguments
from hf_deeplense.training.data import DataArguments, load_splits, make_image_processor, on_training_device
from hf_deeplense.training.trainer import make_trainer

CONFIGS = Path(__file__).resolve().parents[2] / "recipes" / "configs"


def _tiny_model() -> DeepLenseViTForImageClassification:
    config = DeepLenseViTConfig(
        image_size=8,
        patch_size=4,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        num_labels=3,
    )
    return DeepLenseViTForImageClassification(config)


def _batches(loader) -> list[dict[str, torch.Tensor]]:
    return [dict(batch) for batch in loader]


def _trainer(data_args, splits, tmp_path):
    """The LensingTrainer of a `finetune` run (8 px inputs: the processor resizes the 16 px images)."""
    processor = make_image_processor(data_args, num_channels=1, image_size=16)
    args = LensingTrainingArguments(
        str(tmp_path), per_device_train_batch_size=7, per_device_eval_batch_size=5, seed=5, report_to="none"
    )
    return make_trainer(
        _tiny_model(), args, data_args, processor, splits["train"], splits["validation"], label_column="label"
    )


@pytest.mark.parametrize("augment", [{"augment": False}, {"augment": True, "max_shift": 2, "noise_std": 0.1}])
def test_on_device_batches_equal_the_default_paths(random_lensing_dataset, tmp_path, augment):
    """Same seed: every training batch of an epoch (shuffle order, resize + min-max, D4 + shift + noise) and every
    evaluation batch are equal, value for value; on the device path the images are processed once."""
    options = {"dataset": str(random_lensing_dataset), "image_size": 8, **augment}
    default_args, device_args = DataArguments(**options), DataArguments(**options, data_on_device=True)
    splits = load_splits(default_args)
    default, on_device = (
        _trainer(default_args, splits, tmp_path),
        _trainer(device_args, splits, tmp_path),
    )
    assert isinstance(on_device.train_dataset, DeviceLensingDataset)
    assert on_device.data_collator.image_processor is None  # batches are only indexed and augmented
    assert on_device.train_dataset.pixel_values.shape == (30, 1, 8, 8)
    for epoch in range(2):  # the second epoch draws another order and other augmentations
        torch.manual_seed(epoch)
        default_batches = _batches(default.get_train_dataloader())
        torch.manual_seed(epoch)
        device_batches = _batches(on_device.get_train_dataloader())
        assert len(default_batches) == len(device_batches) == 5  # 30 rows, batch 7
        for ours, reference in zip(device_batches, default_batches, strict=True):
            assert ours.keys() == reference.keys() == {"pixel_values", "labels"}
            assert ours["pixel_values"].dtype == torch.float32 and ours["labels"].dtype == torch.int64
            torch.testing.assert_close(ours["pixel_values"], reference["pixel_values"], rtol=0, atol=0)
            torch.testing.assert_close(ours["labels"], reference["labels"], rtol=0, atol=0)
    default_eval = _batches(default.get_eval_dataloader())
    device_eval = _batches(on_device.get_eval_dataloader())
    assert [len(batch["labels"]) for batch in device_eval] == [5, 5, 2]
    for ours, reference in zip(device_eval, default_eval, strict=True):
        torch.testing.assert_close(ours, reference, rtol=0, atol=0)


def test_device_dataset_processes_every_image_once_and_keeps_the_other_columns(random_lensing_dataset):
    """The kept tensor is the processor's output for every row (min-max normalised and resized); a `select`ed
    dataset keeps its row order; labels and float columns stay numpy; indices wrap like a sequence's."""
    train = load_splits(DataArguments(dataset=str(random_lensing_dataset)))["train"]
    subset = train.select([29, 3, 17, 3])
    processor = make_image_processor(DataArguments(dataset="x", image_size=8), num_channels=1, image_size=16)
    data = DeviceLensingDataset(with_row_index(subset), processor, device="cpu", chunk_size=3)
    expected = processor(np.stack(subset["pixel_values"]), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(data.pixel_values, expected, rtol=0, atol=0)
    assert data.pixel_values.min() >= 0 and data.pixel_values.max() <= 1  # min-max, then an averaging resize
    batch = data.__getitems__([1, -1, 0])
    assert batch.keys() == {"pixel_values", "label", "log10_m_a", "row_index"}
    np.testing.assert_array_equal(batch["label"], np.asarray(subset["label"])[[1, 3, 0]])
    np.testing.assert_array_equal(batch["row_index"], [1, 3, 0])
    assert isinstance(batch["label"], np.ndarray) and isinstance(batch["pixel_values"], torch.Tensor)
    torch.testing.assert_close(batch["pixel_values"], expected[[1, 3, 0]], rtol=0, atol=0)
    assert data[2]["pixel_values"].shape == (1, 8, 8) and len(data) == 4
    with pytest.raises(IndexError):
        data.__getitems__([4])


def test_data_on_device_needs_main_process_loading(random_lensing_dataset, tmp_path):
    data_args = DataArguments(dataset=str(random_lensing_dataset), data_on_device=True)
    processor = make_image_processor(data_args, num_channels=1, image_size=16)
    train = load_splits(data_args)["train"]
    for name, value in (("dataloader_num_workers", 2), ("dataloader_pin_memory", True)):
        args = LensingTrainingArguments(str(tmp_path), report_to="none")
        setattr(args, name, value)  # transformers turns pinning off without a GPU: set it as a GPU run has it
        with pytest.raises(ValueError, match="dataloader_num_workers 0 and dataloader_pin_memory false"):
            on_training_device(train, data_args, args, processor)
    with pytest.raises(ValueError, match="data_on_device needs a --dataset"):
        DataArguments(simulate="model_ii", data_on_device=True)


def _run(function, config, dataset, output_dir, *extra):
    function(
        [
            "--config",
            str(CONFIGS / config),
            "--dataset",
            str(dataset),
            "--output_dir",
            str(output_dir),
            *extra,
        ]
    )
    return json.loads((output_dir / "metrics.json").read_text())


@pytest.mark.parametrize(
    ("function", "config"),
    [(finetune, "tiny_finetune.yaml"), (pretrain_mae, "tiny_mae.yaml"), (pretrain_ssl, "tiny_simclr.yaml")],
)
@pytest.mark.slow
def test_tiny_runs_with_data_on_device_end_as_the_default_path(
    random_lensing_dataset, tmp_path, function, config
):
    """A whole tiny run (training with evaluation, best-model selection, test report) on the CPU: the same
    metrics to the last bit as the default path, since the batches are the same (on the CPU also where a GPU
    is present: GPU kernels need not be bit-reproducible)."""
    on_device = ("--data_on_device", "true", "--dataloader_pin_memory", "false")
    default = _run(function, config, random_lensing_dataset, tmp_path / "default", "--use_cpu", "true")
    ours = _run(
        function, config, random_lensing_dataset, tmp_path / "on_device", "--use_cpu", "true", *on_device
    )
    assert ours.keys() == default.keys() and "eval_loss" in ours
    for key, value in default.items():
        if not key.endswith(("runtime", "per_second")):
            assert ours[key] == value, key
    if function is finetune:
        assert {"test_auc_macro", "eval_auc_macro"} <= set(ours)
    saved = (tmp_path / "on_device" / "run_config.yaml").read_text()
    assert "data_on_device: true" in saved


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_generator_augments_a_gpu_batch_as_the_same_cpu_batch():
    images = torch.rand(64, 1, 16, 16)
    augment = LensingAugment(max_shift=3, noise_std=0.05)
    on_cpu = augment(images, generator=torch.Generator().manual_seed(1))
    on_gpu = augment(images.cuda(), generator=torch.Generator().manual_seed(1))
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=0, atol=0)
