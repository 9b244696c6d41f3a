"""The DINO loss: cross-entropy between the centred, sharpened teacher distribution of one global crop and the
student distribution of every other crop.

- [0] DINO, 2021, https://arxiv.org/abs/2104.14294 (Caron et al.), Algorithm 1 and eq. (3).

Centring subtracts a running mean `c` of the teacher outputs (an exponential moving average over batches, over
every rank under data parallelism); sharpening uses a teacher temperature below the student's. Together they
avoid collapse without a predictor or negatives.
"""

import torch
import torch.distributed as dist
from torch import nn


def dino_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    center: torch.Tensor,
    student_temperature: float,
    teacher_temperature: float,
) -> torch.Tensor:
    r"""DINO loss of the student crops against the teacher's global crops.

    `loss = mean over pairs (t, s), t != s, and images b of -sum_k P_t[b, k] log P_s[b, k]`, with
    `P_t = softmax((teacher_logits[t] - center) / teacher_temperature)` and
    `P_s = softmax(student_logits[s] / student_temperature)`; crop `t` of the teacher and crop `t` of the student are
    the same view (the first crops of the student are the global crops), and a view is never its own target.

    Args:
        student_logits (`torch.Tensor` of shape `(num_student_crops, batch_size, out_dim)`): head outputs of the
            student for the global crops, then the local crops.
        teacher_logits (`torch.Tensor` of shape `(num_global_crops, batch_size, out_dim)`): head outputs of the
            teacher for the global crops (no gradient flows into them).
        center (`torch.Tensor` of shape `(out_dim,)`): the running centre of the teacher outputs.
        student_temperature (`float`): student softmax temperature (> 0).
        teacher_temperature (`float`): teacher softmax temperature (> 0).

    Returns:
        `torch.Tensor` of shape `()`.
    """
    if teacher_logits.ndim != 3 or student_logits.shape[1:] != teacher_logits.shape[1:]:
        raise ValueError(
            "student_logits and teacher_logits must be (crops, batch_size, out_dim) with the same batch_size and "
            f"out_dim, got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    num_teacher, num_student = teacher_logits.shape[0], student_logits.shape[0]
    if num_student < 2 or num_teacher > num_student:
        raise ValueError(
            f"need >= 2 student crops and at most as many teacher crops, got {num_student}, {num_teacher}"
        )
    teacher_probs = nn.functional.softmax(
        (teacher_logits.float() - center) / teacher_temperature, dim=-1
    ).detach()
    student_log_probs = nn.functional.log_softmax(student_logits.float() / student_temperature, dim=-1)
    batch_size = teacher_logits.shape[1]
    cross_entropy = -torch.einsum("tbk,sbk->ts", teacher_probs, student_log_probs) / batch_size  # (T, S)
    same_view = torch.eye(num_teacher, num_student, dtype=torch.bool, device=cross_entropy.device)
    return cross_entropy[~same_view].mean()


@torch.no_grad()
def updated_center(center: torch.Tensor, teacher_logits: torch.Tensor, momentum: float) -> torch.Tensor:
    """`momentum * center + (1 - momentum) * mean of the teacher outputs` (over crops, images and, in an
    initialised process group, every rank: a collective).

    Args:
        center (`torch.Tensor` of shape `(out_dim,)`): the current centre.
        teacher_logits (`torch.Tensor` of shape `(num_global_crops, batch_size, out_dim)`): this batch's teacher outputs.
        momentum (`float`): the centre's momentum in [0, 1].
    """
    batch_center = teacher_logits.float().mean(dim=(0, 1))  # (out_dim,)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(batch_center)
        batch_center = batch_center / dist.get_world_size()
    return center * momentum + batch_center * (1.0 - momentum)


__all__ = ["dino_loss", "updated_center"]
