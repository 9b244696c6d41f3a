"""NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR.

- [0] SimCLR, 2020, https://arxiv.org/abs/2002.05709 (Chen, Kornblith, Norouzi, Hinton), eq. (1).

The formulation follows lightly's `NTXentLoss` (without a memory bank): the 2N projections of N images seen in two
augmented views are L2-normalised; for every projection the positive is the other view of the same image and the
negatives are the 2(N - 1) projections of the other images. Under data parallelism (`gather_distributed`), the
negatives are those of the global batch: every rank gathers the projections of all ranks (with gradients, as
lightly's `GatherLayer`) and computes the loss of its own anchors, so that the mean over ranks is the loss of the
global batch in one process.
"""

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_gather


def nt_xent_loss(
    projections_1: torch.Tensor,
    projections_2: torch.Tensor,
    temperature: float = 0.5,
    gather_distributed: bool = False,
) -> torch.Tensor:
    r"""NT-Xent loss of two batches of projections, row `i` of both being views of the same image.

    `loss = mean over the 2N anchors a of -log( exp(s(a, p(a)) / T) / sum_{k != a} exp(s(a, k) / T) )`, with `s`
    the cosine similarity, `p(a)` the other view of anchor `a` and `T` the temperature.

    Args:
        projections_1 (`torch.Tensor` of shape `(batch_size, projection_dim)`): projections of the first views.
        projections_2 (`torch.Tensor` of shape `(batch_size, projection_dim)`): projections of the second views.
        temperature (`float`): softmax temperature `T` (> 0); SimCLR uses 0.1-0.5.
        gather_distributed (`bool`): in an initialised process group of several ranks, take the negatives from
            the projections of every rank (a collective: every rank calls it, with batches of the same size).

    Returns:
        `torch.Tensor` of shape `()`: the loss, averaged over the `2 * batch_size` anchors of this rank.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if projections_1.shape != projections_2.shape or projections_1.ndim != 2:
        raise ValueError(
            "projections_1 and projections_2 must both have shape (batch_size, projection_dim), got "
            f"{tuple(projections_1.shape)} and {tuple(projections_2.shape)}"
        )
    batch_size = projections_1.shape[0]
    if batch_size < 2:
        raise ValueError(
            f"NT-Xent needs at least 2 images per batch (negatives), got batch_size={batch_size}"
        )
    local_1 = nn.functional.normalize(projections_1.float(), dim=1)  # (N, D)
    local_2 = nn.functional.normalize(projections_2.float(), dim=1)
    global_1, global_2, offset = local_1, local_2, 0
    if gather_distributed and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        global_1, global_2 = torch.cat(all_gather(local_1)), torch.cat(all_gather(local_2))  # (world * N, D)
        offset = dist.get_rank() * batch_size  # this rank's images in the global batch
    anchors = torch.cat([local_1, local_2])  # (2N, D)
    candidates = torch.cat([global_1, global_2])  # (2M, D), M images in the global batch
    logits = anchors @ candidates.T / temperature  # (2N, 2M) cosine similarities / T
    images = torch.arange(batch_size, device=logits.device) + offset  # global index of each local image
    total = global_1.shape[0]
    self_index = torch.cat([images, images + total])  # an anchor is never its own negative
    logits = logits.masked_fill(
        nn.functional.one_hot(self_index, 2 * total).bool(), float("-inf")
    )  # (2N, 2M)
    positives = torch.cat([images + total, images])  # the other view of the same image
    return nn.functional.cross_entropy(logits, positives)


class NTXentLoss(nn.Module):
    """Module form of [`nt_xent_loss`] with a fixed temperature (SimCLR, 2020, https://arxiv.org/abs/2002.05709)."""

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, projections_1: torch.Tensor, projections_2: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(projections_1, projections_2, self.temperature, self.gather_distributed)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


__all__ = ["NTXentLoss", "nt_xent_loss"]
