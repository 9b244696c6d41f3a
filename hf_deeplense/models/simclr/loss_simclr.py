"""NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR.

- [0] SimCLR, 2020, https://arxiv.org/abs/2002.05709 (Chen, Kornblith, Norouzi, Hinton), eq. (1).

The formulation follows lightly's `NTXentLoss` (without a memory bank): the 2N projections of N images seen in two
augmented views are L2-normalised; for every projection the positive is the other view of the same image and the
negatives are the 2(N - 1) projections of the other images.
"""

import torch
from torch import nn


def nt_xent_loss(
    projections_1: torch.Tensor, projections_2: torch.Tensor, temperature: float = 0.5
) -> torch.Tensor:
    r"""NT-Xent loss of two batches of projections, row `i` of both being views of the same image.

    `loss = mean over the 2N anchors a of -log( exp(s(a, p(a)) / T) / sum_{k != a} exp(s(a, k) / T) )`, with `s`
    the cosine similarity, `p(a)` the other view of anchor `a` and `T` the temperature.

    Args:
        projections_1 (`torch.Tensor` of shape `(batch_size, projection_dim)`): projections of the first views.
        projections_2 (`torch.Tensor` of shape `(batch_size, projection_dim)`): projections of the second views.
        temperature (`float`): softmax temperature `T` (> 0); SimCLR uses 0.1-0.5.

    Returns:
        `torch.Tensor` of shape `()`: the loss, averaged over the `2 * batch_size` anchors.
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
    projections = nn.functional.normalize(torch.cat([projections_1, projections_2]).float(), dim=1)  # (2N, D)
    logits = projections @ projections.T / temperature  # (2N, 2N) cosine similarities / T
    self_mask = torch.eye(2 * batch_size, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))  # an anchor is never its own negative
    # the positive of anchor i is i + N (first views) or i - N (second views)
    positives = torch.arange(2 * batch_size, device=logits.device).roll(batch_size)
    return nn.functional.cross_entropy(logits, positives)


class NTXentLoss(nn.Module):
    """Module form of [`nt_xent_loss`] with a fixed temperature (SimCLR, 2020, https://arxiv.org/abs/2002.05709)."""

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, projections_1: torch.Tensor, projections_2: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(projections_1, projections_2, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


__all__ = ["NTXentLoss", "nt_xent_loss"]
