"""`freeze`: the one way a module is held fixed while the rest of a model trains (a linear probe's backbone, ADDA's
source model)."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["freeze"]


def _keep_in_eval_mode(module: nn.Module, inputs: Any) -> None:
    if module.training:
        module.eval()


def freeze(module: nn.Module) -> nn.Module:
    """Freeze `module`: no gradients, and eval mode kept even when a parent module is set to train mode, so that its
    batch-norm statistics and dropout stay fixed. Returns `module`."""
    module.requires_grad_(False).eval()
    module.register_forward_pre_hook(_keep_in_eval_mode)
    return module
