"""`LensingTrainer`: batched reads give the stock Trainer's batches; evaluation uses its own collator."""

import pytest
import torch
from transformers import Trainer

from hf_deeplense import DeepLenseViTConfig, DeepLenseViTForImageClassification
from hf_deeplense.data import BatchedLensingDataset, LensingAugment, LensingCollator, with_row_index
from hf_deeplense.training.arguments import LensingTrainingArguments
from hf_deeplense.training.data import DataArguments, load_splits, make_image_processor
from hf_deeplense.training.trainer import LensingTrainer


def _tiny_model() -> DeepLenseViTForImageClassification:
    config = DeepLenseViTConfig(
        image_size=16,
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


@pytest.mark.parametrize("augment", [False, True])
def test_batched_reads_give_the_stock_trainers_batches(random_lensing_dataset, tmp_path, augment):
    splits = load_splits(DataArguments(dataset=str(random_lensing_dataset)))
    train = with_row_index(splits["train"])
    processor = make_image_processor(DataArguments(dataset="x"), num_channels=1, image_size=16)
    collator = LensingCollator(processor, augment=LensingAugment() if augment else None, seed=3)
    eval_collator = LensingCollator(processor)
    args = LensingTrainingArguments(str(tmp_path), per_device_train_batch_size=7, seed=5, report_to="none")
    assert not args.remove_unused_columns  # the house default that enables batched reads

    def make(trainer_class):
        kwargs = {"eval_data_collator": eval_collator} if trainer_class is LensingTrainer else {}
        return trainer_class(
            model=_tiny_model(),
            args=args,
            train_dataset=train,
            eval_dataset=splits["validation"],
            data_collator=collator,
            **kwargs,
        )

    ours, stock = make(LensingTrainer), make(Trainer)
    torch.manual_seed(0)  # the shuffle order: drawn when the loader is built and iterated
    train_loader = ours.get_train_dataloader()
    assert isinstance(train_loader.dataset, BatchedLensingDataset)
    our_batches = _batches(train_loader)
    torch.manual_seed(0)
    stock_batches = _batches(stock.get_train_dataloader())
    assert len(our_batches) == len(stock_batches) == 5  # 30 rows, batch 7
    for our_batch, stock_batch in zip(our_batches, stock_batches):
        assert our_batch.keys() == stock_batch.keys()
        for key in our_batch:
            assert torch.equal(our_batch[key], stock_batch[key]), key
    assert (
        sorted(torch.cat([batch["labels"] for batch in our_batches]).tolist())
        == [0] * 10 + [1] * 10 + [2] * 10
    )

    eval_batch = next(iter(ours.get_eval_dataloader()))
    assert isinstance(ours.get_eval_dataloader().dataset, BatchedLensingDataset)
    expected = eval_collator([splits["validation"][i] for i in range(len(eval_batch["labels"]))])
    assert torch.equal(eval_batch["pixel_values"], expected["pixel_values"])  # no augmentation in evaluation


def test_stock_path_when_columns_are_removed(random_lensing_dataset, tmp_path):
    splits = load_splits(DataArguments(dataset=str(random_lensing_dataset)))
    args = LensingTrainingArguments(str(tmp_path), remove_unused_columns=True, report_to="none")
    trainer = LensingTrainer(model=_tiny_model(), args=args, train_dataset=splits["train"])
    assert not isinstance(trainer.get_train_dataloader().dataset, BatchedLensingDataset)


def test_floating_point_ops_equal_the_stock_estimate(tmp_path):
    args = LensingTrainingArguments(str(tmp_path), report_to="none")
    model = _tiny_model()
    trainer, stock = LensingTrainer(model=model, args=args), Trainer(model=model, args=args)
    inputs = {"pixel_values": torch.zeros(5, 1, 16, 16)}
    assert trainer.floating_point_ops(inputs) == stock.floating_point_ops(inputs) > 0
    assert trainer.floating_point_ops(inputs) == stock.floating_point_ops(inputs)  # cached count
    trainer.model = other = DeepLenseViTForImageClassification(
        DeepLenseViTConfig(
            image_size=16, patch_size=4, hidden_size=8, num_hidden_layers=1, num_attention_heads=2
        )
    )  # a new model (e.g. a hyperparameter-search trial) is counted again
    assert trainer.floating_point_ops(inputs) == 6 * inputs["pixel_values"].numel() * other.num_parameters(
        exclude_embeddings=True
    )
    assert trainer.floating_point_ops({"labels": torch.zeros(5)}) == 0
