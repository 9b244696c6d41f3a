"""Evaluating a frozen pre-trained encoder: weighted kNN classification of its embeddings and a 2-D map of them.

- [0] Wu et al., Unsupervised Feature Learning via Non-Parametric Instance Discrimination, 2018,
  https://arxiv.org/abs/1805.01978 (the temperature-weighted kNN vote)
- [1] Caron et al., Emerging Properties in Self-Supervised Vision Transformers (DINO), 2021,
  https://arxiv.org/abs/2104.14294 (its protocol: cosine similarity, k=20, T=0.07, the training split as memory bank)

The encoder of a model is `model.base_model` (what `training.modeling.freeze_backbone` freezes for a linear probe):
the MAE's encoder (every patch visible), SimCLR's backbone, a classifier's backbone. Its forward returns
`pooler_output (batch, hidden)`, the embedding used here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoImageProcessor, AutoModel

from ..data import LensingCollator, load_lensing_dataset
from ..data.selection import class_names_of
from .inference import _loader
from .metrics import load_metric
from .plots import plot_embedding_2d
from .report import SplitReport

__all__ = ["embed_dataset", "encoder_of", "evaluate_encoder", "knn_classify", "load_encoder"]


def encoder_of(model: nn.Module) -> nn.Module:
    """The encoder of a model: `model.base_model` for a `PreTrainedModel` (an MAE's encoder, SimCLR's backbone),
    else the module itself."""
    return getattr(model, "base_model", model)


def load_encoder(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"):
    """The encoder (`encoder_of(AutoModel.from_pretrained(checkpoint))`, in eval mode on `device`) and the image
    processor saved with a checkpoint (folder or Hub id), resizing to the model's size."""
    encoder = encoder_of(AutoModel.from_pretrained(checkpoint)).to(device).eval()
    processor = AutoImageProcessor.from_pretrained(checkpoint)
    processor.do_resize = True  # the dataset's images may have another size than the model's
    return encoder, processor


@torch.no_grad()
def embed_dataset(
    model: nn.Module,
    dataset,
    processor=None,
    batch_size: int = 64,
    label_column: str | None = "label",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The pooled embeddings `(num_rows, hidden)` of every row, in order, and the labels (or None).

    Args:
        model: a model or its encoder (`encoder_of` is applied); run in eval mode on its own device, no gradients.
        dataset: rows with `pixel_values` (a `datasets.Dataset` split, a list of row dicts).
        processor: the run's `LensImageProcessor` (normalisation, resizing); None: the images as they are.
        label_column: the labels returned (None: no labels).
    """
    encoder = encoder_of(model).eval()
    device = next(encoder.parameters()).device
    loader = _loader(dataset, LensingCollator(processor, label_column=label_column), batch_size)
    embeddings, labels = [], []
    for batch in tqdm(loader, desc="embed", disable=not progress):
        pooled = encoder(pixel_values=batch["pixel_values"].to(device)).pooler_output  # (batch, hidden)
        embeddings.append(pooled.float().cpu().numpy())
        if "labels" in batch:
            labels.append(batch["labels"].numpy())
    return np.concatenate(embeddings), (np.concatenate(labels) if labels else None)


@torch.no_grad()
def knn_classify(
    bank_embeddings: np.ndarray | torch.Tensor,
    bank_labels: np.ndarray | torch.Tensor,
    query_embeddings: np.ndarray | torch.Tensor,
    num_classes: int | None = None,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Temperature-weighted kNN votes ([0], [1]): each query's `k` nearest bank embeddings by cosine similarity
    `s` vote for their class with weight `exp(s / temperature)` (rescaled per query, which leaves the shares).

    Args:
        bank_embeddings: `(num_bank, dim)` embeddings of the memory bank (the training split).
        bank_labels: `(num_bank,)` their class ids.
        query_embeddings: `(num_queries, dim)` embeddings to classify.
        num_classes: columns of the result (default: `max(bank_labels) + 1`).
        k: neighbours (at most the bank's size).
        temperature: vote temperature (> 0).
        chunk_size: queries compared with the bank at once (memory: `chunk_size * num_bank` similarities).
        device: where the similarities are computed (default: the CPU, or the device of a bank tensor).

    Returns:
        `(num_queries, num_classes)` float64 vote shares (each row sums to 1): the argmax is the kNN prediction,
        each column a class score for ROC AUC.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    bank = torch.as_tensor(bank_embeddings)
    device = device or bank.device
    bank = nn.functional.normalize(bank.to(device, torch.float32), dim=1)  # (num_bank, dim)
    labels = torch.as_tensor(bank_labels).to(device, torch.int64).reshape(-1)
    queries = nn.functional.normalize(torch.as_tensor(query_embeddings).to(device, torch.float32), dim=1)
    num_classes = num_classes or int(labels.max()) + 1
    k = min(k, len(bank))
    votes = []
    for chunk in queries.split(chunk_size):
        similarity, index = (chunk @ bank.T).topk(k, dim=1)  # (chunk, k): nearest first
        similarity = similarity.double()
        weights = ((similarity - similarity[:, :1]) / temperature).exp()  # exp(s / T), scaled: no overflow
        chunk_votes = torch.zeros(len(chunk), num_classes, dtype=torch.float64, device=device)
        votes.append(chunk_votes.scatter_add_(1, labels[index], weights).cpu())  # (chunk, num_classes)
    votes = torch.cat(votes) if votes else torch.zeros(0, num_classes, dtype=torch.float64)
    return (votes / votes.sum(dim=1, keepdim=True)).numpy()


def evaluate_encoder(
    model_or_path: nn.Module | str | os.PathLike,
    dataset: str | os.PathLike | Mapping,
    *,
    processor=None,
    train_split: str = "train",
    eval_split: str = "test",
    k: int = 20,
    temperature: float = 0.07,
    output_dir: str | os.PathLike | None = None,
    plot: bool = True,
    max_plot_points: int = 2000,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> SplitReport:
    """kNN classification of a frozen encoder's embeddings (DINO's protocol [1]) and their t-SNE map.

    The `train_split` embeddings are the memory bank; each `eval_split` image is classified by the weighted vote
    of its `k` nearest neighbours (`knn_classify`), and the vote shares score the ROC AUCs.

    Args:
        model_or_path: a checkpoint (folder or Hub id: `load_encoder`, with its saved processor) or a model
            (`encoder_of(model)` is embedded, on its own device unless `device` is given).
        dataset: a dataset folder or Hub id (`load_lensing_dataset`) or a mapping of split name -> split.
        processor: the image processor (default: the checkpoint's; required for a model whose inputs need one).
        train_split, eval_split: memory bank and scored split.
        k, temperature: the kNN vote.
        output_dir: plots go to `output_dir/plots/` (`embedding_tsne_<eval_split>.png`); None: no plot.
        plot: draw the t-SNE map of the `eval_split` embeddings (at most `max_plot_points`, drawn with `seed`).
        batch_size: images per forward pass.
        device: default: CUDA when available, else the CPU (for a checkpoint); the model's device (for a model).

    Returns:
        A `SplitReport`: metrics `knn_<eval_split>_accuracy`, `knn_<eval_split>_auc_<class>`, `..._auc_macro`,
        `..._auc_micro` (the `lensing_classification` module on the vote shares) and the plot path.
    """
    if isinstance(model_or_path, (str, os.PathLike)):
        encoder, saved_processor = load_encoder(
            model_or_path, device or ("cuda" if torch.cuda.is_available() else "cpu")
        )
        processor = processor or saved_processor
    else:
        encoder = encoder_of(model_or_path)
        if device is not None:
            encoder.to(device)
    splits = dataset
    if isinstance(dataset, (str, os.PathLike)):
        splits = load_lensing_dataset(dataset).with_format("numpy")  # batches of arrays, not nested lists
    class_names = class_names_of(splits[train_split])
    embed = dict(processor=processor, batch_size=batch_size, progress=progress)
    bank, bank_labels = embed_dataset(encoder, splits[train_split], **embed)
    queries, labels = embed_dataset(encoder, splits[eval_split], **embed)
    votes = knn_classify(
        bank, bank_labels, queries, len(class_names), k, temperature, device=next(encoder.parameters()).device
    )
    results = load_metric("lensing_classification").compute(
        predictions=votes, references=labels, class_names=class_names
    )
    report = SplitReport(metrics={f"knn_{eval_split}_{key}": value for key, value in results.items()})
    if plot and output_dir is not None:
        path = Path(output_dir) / "plots" / f"embedding_tsne_{eval_split}.png"
        report.plots["embedding_tsne"] = plot_embedding_2d(
            queries,
            labels,
            class_names,
            path,
            max_plot_points,
            seed,
            title=f"t-SNE of the embeddings ({eval_split})",
        )
    return report
