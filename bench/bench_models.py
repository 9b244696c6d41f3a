#!/usr/bin/env python
"""Train-step throughput of the DeepLense models against stock transformers / timm models.

Every row times one full training step (forward, backward, fused AdamW step; bf16 autocast on CUDA, fp32 on
CPU) of one model at one batch size, in this one process, with the same inputs, configuration and batch size
as the stock model it is compared with:

- `mae/...`: `DeepLenseMAEForPreTraining` vs transformers `ViTMAEForPreTraining` (eager, sdpa, sdpa +
  `torch.compile`), ViT-S encoder, 256-wide 4-layer decoder, 75% masking;
- `vit/...`: `DeepLenseViTForImageClassification` (3 classes) vs timm `vit_small` (patch and size set to ours)
  and transformers `ViTForImageClassification` (sdpa);
- `hybrid/...`: `DeepLenseHybridForImageClassification` (conv stem + ViT-S encoder) vs a timm `vit_small`
  with the same number of tokens;
- `cnn/...`: `DeepLenseCNNForImageClassification` ResNet-18 vs timm `resnet18` (channels_last);
- with `--knobs`, the CPU-training levers, each one change to our model's step against that step (`ours`):
  `ours-bf16` (bf16 autocast on the CPU too), `ours-channels-last` (hybrid conv stem), `ours-attn-eager`
  (the ViT's `attn_implementation="eager"`), `ours-sdpa-math` / `-flash` / `-efficient` (one
  `torch.nn.attention.SDPBackend` forced; skipped where the device has no such kernel), `ours-width-x<f>`
  (ViT hidden and MLP widths, ResNet-18 stage widths times f). Preset `study` has the models of
  `recipes/configs/study_cpu.yaml` at 32 and 64 px, batch 64.

Per row: images/s (median step time over `--steps` timed steps after `--warmup` untimed ones; CUDA timed with
events between consecutive steps; with `--repeat N`, the median of N interleaved rounds), the ratio to the
row's baseline, peak memory (CUDA: `max_memory_allocated`; CPU: the process's peak RSS, reset per row), FLOPs
per step (counted once per row with `torch.utils.flop_counter.FlopCounterMode` on the uncompiled model at
batch 2 and scaled to the batch), the achieved TFLOP/s and an MFU estimate against `--peak-tflops` (989, H100
dense bf16, by default on CUDA).

Usage:
    python bench/bench_models.py                           # full sizes on CUDA, small CPU sizes otherwise
    python bench/bench_models.py --rows 'mae/*' --json bench_models.json
    python bench/bench_models.py --list                    # row names, nothing run
    python bench/bench_models.py --smoke                   # tiny configs, 2 steps, CPU (tests run this)
    python bench/bench_models.py --preset study --knobs --rows 'vit/*/ours*' --threads 1 --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import fnmatch
import functools
import gc
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/bench_models.py` from a checkout without an install
    sys.path.insert(0, str(REPO_ROOT))

H100_BF16_DENSE_TFLOPS = 989.0
COMPILE_MIN_WARMUP = 3  # compiled rows: the first steps compile forward and backward (and may recompile once)
FLOP_COUNT_BATCH = 2  # FLOPs are linear in the batch for every model here: count at 2, scale to the batch

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


# ----------------------------------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """Input size, patch size (ViT rows; 0 for CNNs) and batch size of a row."""

    image_size: int
    patch_size: int
    batch_size: int

    @property
    def label(self) -> str:
        patch = f"-p{self.patch_size}" if self.patch_size else ""
        return f"{self.image_size}px{patch}-b{self.batch_size}"


@dataclass(frozen=True)
class Preset:
    """Model widths and the shapes timed: `full` (the GPU figures), `cpu` (small, for this CPU), `smoke`."""

    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    decoder_hidden_size: int
    decoder_num_hidden_layers: int
    decoder_num_attention_heads: int
    decoder_intermediate_size: int
    hybrid_stem_channels: tuple[int, ...]  # stride-2 blocks: 2**len = the timm ViT's patch size (same tokens)
    cnn_channels: tuple[int, ...] | None  # ResNet-18 stage widths; None = the stock (64, 128, 256, 512)
    mae_shapes: tuple[Shape, ...]
    vit_shapes: tuple[Shape, ...]
    hybrid_shapes: tuple[Shape, ...]
    cnn_shapes: tuple[Shape, ...]
    warmup: int
    steps: int
    hybrid_patch_size: int = 1  # of the hybrid's feature map: tokens = (image / 2**len(stem) / this)**2


STOCK_RESNET18_CHANNELS = (64, 128, 256, 512)

PRESETS = {
    "full": Preset(
        name="full",
        hidden_size=384,  # ViT-S
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        decoder_hidden_size=256,  # DeepLenseMAEConfig's decoder defaults
        decoder_num_hidden_layers=4,
        decoder_num_attention_heads=8,
        decoder_intermediate_size=1024,
        hybrid_stem_channels=(32, 64, 128),
        cnn_channels=None,
        mae_shapes=(Shape(64, 8, 512), Shape(64, 8, 2048), Shape(150, 10, 256)),
        vit_shapes=(Shape(64, 8, 512), Shape(150, 10, 256)),
        hybrid_shapes=(Shape(64, 8, 512),),
        cnn_shapes=(Shape(64, 0, 512), Shape(150, 0, 256)),
        warmup=5,
        steps=20,
    ),
    "cpu": Preset(
        name="cpu",
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=256,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=128,
        hybrid_stem_channels=(16, 32),
        cnn_channels=None,
        mae_shapes=(Shape(32, 4, 32),),
        vit_shapes=(Shape(32, 4, 32),),
        hybrid_shapes=(Shape(32, 4, 32),),
        cnn_shapes=(Shape(32, 0, 32),),
        warmup=2,
        steps=5,
    ),
    "smoke": Preset(
        name="smoke",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
        hybrid_stem_channels=(8, 16),
        cnn_channels=(8, 16, 32, 64),
        mae_shapes=(Shape(16, 4, 4),),
        vit_shapes=(Shape(16, 4, 4),),
        hybrid_shapes=(Shape(16, 4, 4),),
        cnn_shapes=(Shape(16, 0, 4),),
        warmup=0,  # the FLOP-counting pass already runs each model once
        steps=2,
    ),
    "study": Preset(  # the models of recipes/configs/study_cpu.yaml, at its 32 px and at 64 px, batch 64
        name="study",
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=64,
        hybrid_stem_channels=(32, 64, 128),  # DeepLenseHybridConfig's default stem
        hybrid_patch_size=4,
        cnn_channels=None,
        mae_shapes=(Shape(32, 8, 64), Shape(64, 8, 64)),
        vit_shapes=(Shape(32, 8, 64), Shape(64, 8, 64)),
        hybrid_shapes=(Shape(32, 32, 64), Shape(64, 32, 64)),  # timm ViT patch = 2**3 stem x 4
        cnn_shapes=(Shape(32, 0, 64), Shape(64, 0, 64)),
        warmup=3,
        steps=10,
    ),
}


# ----------------------------------------------------------------------------------------------------------
# Models: ours and the stock ones, built from the same preset and shape
# ----------------------------------------------------------------------------------------------------------


def output_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Self-supervised models: the loss their forward computes from the images alone."""
    return model(pixel_values=batch["pixel_values"]).loss


def labelled_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """transformers-style heads: the loss their forward computes from `labels`."""
    return model(pixel_values=batch["pixel_values"], labels=batch["labels"]).loss


def timm_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(model(batch["pixel_values"]), batch["labels"])


def _mae_kwargs(preset: Preset, shape: Shape) -> dict[str, Any]:
    """Field names shared by `DeepLenseMAEConfig` and transformers' `ViTMAEConfig`."""
    return dict(
        image_size=shape.image_size,
        patch_size=shape.patch_size,
        num_channels=1,
        hidden_size=preset.hidden_size,
        num_hidden_layers=preset.num_hidden_layers,
        num_attention_heads=preset.num_attention_heads,
        intermediate_size=preset.intermediate_size,
        decoder_hidden_size=preset.decoder_hidden_size,
        decoder_num_hidden_layers=preset.decoder_num_hidden_layers,
        decoder_num_attention_heads=preset.decoder_num_attention_heads,
        decoder_intermediate_size=preset.decoder_intermediate_size,
        mask_ratio=0.75,
        norm_pix_loss=False,
    )


def _vit_kwargs(preset: Preset, shape: Shape) -> dict[str, Any]:
    """Field names shared by `DeepLenseViTConfig` and transformers' `ViTConfig`."""
    return dict(
        image_size=shape.image_size,
        patch_size=shape.patch_size,
        num_channels=1,
        hidden_size=preset.hidden_size,
        num_hidden_layers=preset.num_hidden_layers,
        num_attention_heads=preset.num_attention_heads,
        intermediate_size=preset.intermediate_size,
        num_labels=3,
    )


def build_ours_mae(preset: Preset, shape: Shape) -> nn.Module:
    from hf_deeplense import DeepLenseMAEConfig, DeepLenseMAEForPreTraining

    return DeepLenseMAEForPreTraining(DeepLenseMAEConfig(**_mae_kwargs(preset, shape)))


def build_hf_mae(preset: Preset, shape: Shape, attn_implementation: str) -> nn.Module:
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    config = ViTMAEConfig(**_mae_kwargs(preset, shape), attn_implementation=attn_implementation)
    return ViTMAEForPreTraining(config)


def build_ours_vit(preset: Preset, shape: Shape, attn_implementation: str | None = None) -> nn.Module:
    from hf_deeplense import DeepLenseViTConfig, DeepLenseViTForImageClassification

    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    return DeepLenseViTForImageClassification(DeepLenseViTConfig(**_vit_kwargs(preset, shape), **kwargs))


def build_hf_vit(preset: Preset, shape: Shape) -> nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    return ViTForImageClassification(ViTConfig(**_vit_kwargs(preset, shape), attn_implementation="sdpa"))


def build_timm_vit(preset: Preset, shape: Shape) -> nn.Module:
    import timm

    return timm.create_model(
        "vit_small_patch16_224",  # ViT-S; size, patch, channels and (for small presets) widths set below
        pretrained=False,
        img_size=shape.image_size,
        patch_size=shape.patch_size,
        in_chans=1,
        num_classes=3,
        embed_dim=preset.hidden_size,
        depth=preset.num_hidden_layers,
        num_heads=preset.num_attention_heads,
        mlp_ratio=preset.intermediate_size / preset.hidden_size,
    )


def build_ours_hybrid(preset: Preset, shape: Shape) -> nn.Module:
    from hf_deeplense import DeepLenseHybridConfig, DeepLenseHybridForImageClassification

    stride = 2 ** len(preset.hybrid_stem_channels) * preset.hybrid_patch_size
    if shape.image_size // stride != shape.image_size // shape.patch_size:
        raise ValueError(
            f"hybrid stem {preset.hybrid_stem_channels}, patch {preset.hybrid_patch_size} and ViT patch "
            f"{shape.patch_size} give different token counts"
        )
    config = DeepLenseHybridConfig(
        image_size=shape.image_size,
        num_channels=1,
        stem_channels=list(preset.hybrid_stem_channels),
        patch_size=preset.hybrid_patch_size,
        hidden_size=preset.hidden_size,
        num_hidden_layers=preset.num_hidden_layers,
        num_attention_heads=preset.num_attention_heads,
        intermediate_size=preset.intermediate_size,
        num_labels=3,
    )
    return DeepLenseHybridForImageClassification(config)


def build_ours_cnn(preset: Preset, shape: Shape) -> nn.Module:
    from hf_deeplense import DeepLenseCNNConfig, DeepLenseCNNForImageClassification

    model_args = {"channels": list(preset.cnn_channels)} if preset.cnn_channels else None
    config = DeepLenseCNNConfig(
        architecture="resnet18",
        num_channels=1,
        image_size=shape.image_size,
        model_args=model_args,
        num_labels=3,
    )
    return DeepLenseCNNForImageClassification(config)


def build_timm_resnet(preset: Preset, shape: Shape) -> nn.Module:
    import timm

    model_args = {"channels": tuple(preset.cnn_channels)} if preset.cnn_channels else {}
    return timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=3, **model_args)


def scale_width(preset: Preset, factor: float) -> Preset:
    """`preset` with `factor` times the ViT widths (`hidden_size` and `intermediate_size`; the number of heads
    kept) and the ResNet-18 stage widths; depth, patch and image sizes unchanged."""
    channels = preset.cnn_channels or STOCK_RESNET18_CHANNELS
    return dataclasses.replace(
        preset,
        hidden_size=round(preset.hidden_size * factor),
        intermediate_size=round(preset.intermediate_size * factor),
        cnn_channels=tuple(round(width * factor) for width in channels),
    )


def build_scaled(
    build: Callable[[Preset, Shape], nn.Module], factor: float, preset: Preset, shape: Shape
) -> nn.Module:
    """`build` at `factor` times the preset's widths (`scale_width`)."""
    return build(scale_width(preset, factor), shape)


# ----------------------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One model of a comparison group: how to build it, its loss, and how it runs."""

    name: str
    baseline: str  # the stock variant its ratio is taken against
    build: Callable[[Preset, Shape], nn.Module]
    loss_fn: LossFn
    description: str
    compile: bool = False
    channels_last: bool = False
    autocast_bf16: bool = False  # bf16 autocast on the CPU too (CUDA rows always have it)
    sdpa_backend: str | None = None  # a `torch.nn.attention.SDPBackend` name forced around the forward
    knob: bool = False  # a CPU-training lever against today's step (`--knobs`), not a stock comparison


def _hf_mae_eager(preset: Preset, shape: Shape) -> nn.Module:
    return build_hf_mae(preset, shape, "eager")


def _hf_mae_sdpa(preset: Preset, shape: Shape) -> nn.Module:
    return build_hf_mae(preset, shape, "sdpa")


def _ours_vit_eager_attention(preset: Preset, shape: Shape) -> nn.Module:
    return build_ours_vit(preset, shape, attn_implementation="eager")


def knob_variants(
    build: Callable[[Preset, Shape], nn.Module], loss_fn: LossFn, name: str, levers: Sequence[str]
) -> tuple[Variant, ...]:
    """Variants of `build` ("ours") that each change one lever of the train step, ratio against "ours":
    `bf16` (autocast), `channels-last`, `attn-eager` (the ViT's `attn_implementation="eager"`), `sdpa-math` /
    `sdpa-flash` / `sdpa-efficient` (one `torch.nn.attention.SDPBackend` forced), `width-x<f>` (`scale_width`)."""
    backends = {"sdpa-math": "MATH", "sdpa-flash": "FLASH_ATTENTION", "sdpa-efficient": "EFFICIENT_ATTENTION"}
    variants = []
    for lever in levers:
        options: dict[str, Any] = {"knob": True}
        variant_build, description = build, f"{name}, {lever}"
        if lever == "bf16":
            options["autocast_bf16"], description = True, f"{name}, bf16 autocast"
        elif lever == "channels-last":
            options["channels_last"], description = True, f"{name}, channels_last"
        elif lever == "attn-eager":
            variant_build, description = _ours_vit_eager_attention, f"{name}, attn_implementation eager"
        elif lever in backends:
            options["sdpa_backend"] = backends[lever]
            description = f"{name}, sdpa_kernel({backends[lever]})"
        elif lever.startswith("width-x"):
            factor = float(lever.removeprefix("width-x"))
            variant_build = functools.partial(build_scaled, build, factor)
            description = f"{name}, {factor:g}x width"
        else:
            raise ValueError(f"unknown lever {lever!r}")
        variants.append(Variant(f"ours-{lever}", "ours", variant_build, loss_fn, description, **options))
    return tuple(variants)


HF_MAE = "transformers ViTMAEForPreTraining"
OURS_VIT = "DeepLenseViTForImageClassification"
OURS_CNN = "DeepLenseCNNForImageClassification resnet18"
OURS_HYBRID = "DeepLenseHybridForImageClassification"
# group -> variants, baselines first
VARIANTS: dict[str, tuple[Variant, ...]] = {
    "mae": (
        Variant("hf-sdpa", "hf-sdpa", _hf_mae_sdpa, output_loss, f"{HF_MAE}, sdpa"),
        Variant("hf-eager", "hf-sdpa", _hf_mae_eager, output_loss, f"{HF_MAE}, eager"),
        Variant(
            "hf-sdpa-compile", "hf-sdpa", _hf_mae_sdpa, output_loss, f"{HF_MAE}, sdpa, compiled", compile=True
        ),
        Variant("ours", "hf-sdpa", build_ours_mae, output_loss, "DeepLenseMAEForPreTraining"),
        Variant(
            "ours-compile",
            "hf-sdpa-compile",
            build_ours_mae,
            output_loss,
            "DeepLenseMAEForPreTraining, compiled",
            compile=True,
        ),
    ),
    "vit": (
        Variant("timm", "timm", build_timm_vit, timm_loss, "timm vit_small (img_size, patch_size set)"),
        Variant("timm-compile", "timm", build_timm_vit, timm_loss, "timm vit_small, compiled", compile=True),
        Variant(
            "hf-sdpa", "timm", build_hf_vit, labelled_loss, "transformers ViTForImageClassification, sdpa"
        ),
        Variant("ours", "timm", build_ours_vit, labelled_loss, OURS_VIT),
        Variant(
            "ours-compile",
            "timm-compile",
            build_ours_vit,
            labelled_loss,
            f"{OURS_VIT}, compiled",
            compile=True,
        ),
        *knob_variants(
            build_ours_vit,
            labelled_loss,
            OURS_VIT,
            ("attn-eager", "sdpa-math", "sdpa-flash", "sdpa-efficient", "bf16", "width-x0.5", "width-x2"),
        ),
    ),
    "hybrid": (
        Variant("timm-vit", "timm-vit", build_timm_vit, timm_loss, "timm vit_small, same number of tokens"),
        Variant("ours", "timm-vit", build_ours_hybrid, labelled_loss, OURS_HYBRID),
        *knob_variants(build_ours_hybrid, labelled_loss, OURS_HYBRID, ("channels-last", "bf16")),
    ),
    "cnn": (
        Variant(
            "timm-cl",
            "timm-cl",
            build_timm_resnet,
            timm_loss,
            "timm resnet18, channels_last",
            channels_last=True,
        ),
        Variant("timm", "timm-cl", build_timm_resnet, timm_loss, "timm resnet18, NCHW"),
        Variant("ours", "timm-cl", build_ours_cnn, labelled_loss, f"{OURS_CNN}, NCHW"),
        Variant(
            "ours-cl",
            "timm-cl",
            build_ours_cnn,
            labelled_loss,
            f"{OURS_CNN}, channels_last",
            channels_last=True,
        ),
        *knob_variants(build_ours_cnn, labelled_loss, OURS_CNN, ("bf16", "width-x0.5", "width-x0.25")),
    ),
}


@dataclass(frozen=True)
class RowSpec:
    """One timed configuration: a variant of a group at one shape."""

    group: str
    shape: Shape
    variant: Variant
    preset: Preset

    @property
    def name(self) -> str:
        return f"{self.group}/{self.shape.label}/{self.variant.name}"

    @property
    def baseline(self) -> str:
        return f"{self.group}/{self.shape.label}/{self.variant.baseline}"

    def build(self) -> nn.Module:
        return self.variant.build(self.preset, self.shape)


def make_rows(preset: Preset, compile_rows: bool = True, knob_rows: bool = False) -> list[RowSpec]:
    """Every row of a preset, in run order (baselines first within each shape); the `torch.compile` rows
    with `compile_rows`, the CPU-lever rows (`Variant.knob`) with `knob_rows`."""
    shapes = {
        "mae": preset.mae_shapes,
        "vit": preset.vit_shapes,
        "hybrid": preset.hybrid_shapes,
        "cnn": preset.cnn_shapes,
    }
    return [
        RowSpec(group, shape, variant, preset)
        for group, variants in VARIANTS.items()
        for shape in shapes[group]
        for variant in variants
        if (compile_rows or not variant.compile) and (knob_rows or not variant.knob)
    ]


def select_rows(rows: Sequence[RowSpec], patterns: str | None) -> list[RowSpec]:
    """Rows whose name matches one of the comma-separated glob `patterns`, plus the baselines they need."""
    if not patterns:
        return list(rows)
    globs = [pattern.strip() for pattern in patterns.split(",") if pattern.strip()]
    wanted = {row.name for row in rows if any(fnmatch.fnmatchcase(row.name, glob) for glob in globs)}
    if not wanted:
        raise SystemExit(f"--rows {patterns!r} matches no row; see --list")
    by_name = {row.name: row for row in rows}
    while True:  # baselines of baselines too (ours-compile -> hf-sdpa-compile -> hf-sdpa)
        baselines = {by_name[name].baseline for name in wanted if by_name[name].baseline in by_name}
        if baselines <= wanted:
            break
        wanted |= baselines
    return [row for row in rows if row.name in wanted]


# ----------------------------------------------------------------------------------------------------------
# Timing, memory, FLOPs
# ----------------------------------------------------------------------------------------------------------


def make_batches(
    shape: Shape, device: torch.device, count: int = 2, channels_last: bool = False, seed: int = 0
) -> list[Batch]:
    """`count` distinct random batches (rotated between steps; random data, never zeros)."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        pixel_values = torch.randn(
            shape.batch_size, 1, shape.image_size, shape.image_size, generator=generator
        )
        labels = torch.randint(0, 3, (shape.batch_size,), generator=generator)
        pixel_values = pixel_values.to(device)
        if channels_last:
            pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
        batches.append({"pixel_values": pixel_values, "labels": labels.to(device)})
    return batches


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """AdamW with the fused kernel (CUDA and CPU both have one in torch >= 2.4)."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return torch.optim.AdamW(parameters, lr=1e-4, weight_decay=0.05, fused=True)


def make_train_step(
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    cuda_graphs: bool = False,
    autocast_bf16: bool = False,
    sdpa_backend: str | None = None,
) -> Callable[[Batch], torch.Tensor]:
    """One optimisation step: bf16 autocast on CUDA (and on the CPU with `autocast_bf16`), fp32 otherwise;
    returns the detached loss (no sync).

    `cuda_graphs`: the model is compiled with `mode="reduce-overhead"`; each step is marked as a new
    iteration so that CUDA-graph replays may reuse the previous step's output memory.
    `sdpa_backend`: the forward runs inside `sdpa_kernel(SDPBackend.<name>)` (an error where that kernel
    cannot run these inputs on this device).
    """
    use_autocast = device.type == "cuda" or autocast_bf16

    def attention_kernels():
        return sdpa_kernel(getattr(SDPBackend, sdpa_backend)) if sdpa_backend else contextlib.nullcontext()

    def step(batch: Batch) -> torch.Tensor:
        if cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast), attention_kernels():
            loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def time_steps(
    step: Callable[[Batch], torch.Tensor],
    batches: Sequence[Batch],
    device: torch.device,
    warmup: int,
    steps: int,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[float], torch.Tensor]:
    """Seconds of each of `steps` timed steps after `warmup` untimed ones, and the last loss.

    On CUDA one event is recorded after every step, so a step's time runs from the end of the previous one to
    its own end: launch gaps and host-side work inside the loop count, and nothing synchronises mid-loop.
    """
    loss = torch.zeros(())
    for index in range(warmup):
        loss = step(batches[index % len(batches)])
        if progress:
            progress(f"warm-up {index + 1}/{warmup}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        events = [torch.cuda.Event(enable_timing=True) for _ in range(steps + 1)]
        events[0].record()
        for index in range(steps):
            loss = step(batches[index % len(batches)])
            events[index + 1].record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) / 1e3 for start, end in zip(events[:-1], events[1:])], loss
    times = []
    for index in range(steps):
        start = time.perf_counter()
        loss = step(batches[index % len(batches)])
        times.append(time.perf_counter() - start)
    return times, loss


def _flash_cpu_forward_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _flash_cpu_backward_flops(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


# torch's FlopCounterMode has formulas for the CUDA attention kernels only; the CPU one uses the same math.
_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _flash_cpu_forward_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _flash_cpu_backward_flops,
}


def count_train_flops(model: nn.Module, loss_fn: LossFn, batch: Batch) -> int:
    """FLOPs of one forward + backward of `model` on `batch` (matmuls, convolutions, attention; fp32)."""
    with FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter:
        loss_fn(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def _slice_batch(batch: Batch, size: int) -> Batch:
    return {key: value[:size] for key, value in batch.items()}


class PeakMemory:
    """Peak memory of a region: CUDA `max_memory_allocated`, or on CPU the process's peak RSS (VmHWM, reset
    through /proc/self/clear_refs; it includes the interpreter and libraries, ~0.5-1 GB)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.kind = "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_peak_rss"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass  # peak since process start then: still an upper bound

    def peak_bytes(self) -> int | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None


def profile_steps(
    step: Callable[[Batch], torch.Tensor],
    batches: Sequence[Batch],
    device: torch.device,
    path_stem: Path,
    steps: int = 2,
    row_limit: int = 30,
) -> list[dict[str, Any]]:
    """Run `steps` more (already warm) steps under `torch.profiler`; write `<stem>.txt` (the ops with the most
    self time: device time on CUDA, CPU time otherwise) and `<stem>.trace.json` (Chrome / Perfetto trace), and
    return the top ops as `{"op", "self_ms_per_step", "share", "calls_per_step"}` records."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as profiler:
        for index in range(steps):
            step(batches[index % len(batches)])
        if cuda:
            torch.cuda.synchronize(device)
    sort_by = "self_device_time_total" if cuda else "self_cpu_time_total"
    averages = profiler.key_averages()
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    path_stem.with_suffix(".txt").write_text(averages.table(sort_by=sort_by, row_limit=row_limit) + "\n")
    profiler.export_chrome_trace(str(path_stem.with_suffix(".trace.json")))
    self_times = {event.key: getattr(event, sort_by) for event in averages}  # microseconds
    total = sum(self_times.values()) or 1.0
    calls = {event.key: event.count for event in averages}
    top = sorted(self_times.items(), key=lambda item: item[1], reverse=True)[:10]
    return [
        {
            "op": name,
            "self_ms_per_step": time_us / 1e3 / steps,
            "share": time_us / total,
            "calls_per_step": calls[name] / steps,
        }
        for name, time_us in top
    ]


def run_row(
    row: RowSpec,
    device: torch.device,
    warmup: int,
    steps: int,
    peak_tflops: float | None,
    progress: Callable[[str], None] | None = None,
    compile_mode: str | None = None,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Build, count, compile (if asked) and time one row (and profile it into `profile_dir`, if given);
    returns its JSON record."""
    torch.manual_seed(0)
    memory = PeakMemory(device)
    memory.reset()
    model = row.build().to(device).train()
    if row.variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
    batches = make_batches(row.shape, device, channels_last=row.variant.channels_last)
    count_batch = min(FLOP_COUNT_BATCH, row.shape.batch_size)
    flops = count_train_flops(model, row.variant.loss_fn, _slice_batch(batches[0], count_batch))
    flops_per_step = flops * row.shape.batch_size // count_batch
    step_model = torch.compile(model, mode=compile_mode) if row.variant.compile else model
    optimizer = make_optimizer(model)
    cuda_graphs = row.variant.compile and compile_mode == "reduce-overhead"
    step = make_train_step(
        step_model,
        row.variant.loss_fn,
        optimizer,
        device,
        cuda_graphs=cuda_graphs,
        autocast_bf16=row.variant.autocast_bf16,
        sdpa_backend=row.variant.sdpa_backend,
    )
    if row.variant.compile:
        warmup = max(warmup, COMPILE_MIN_WARMUP)
    times, loss = time_steps(step, batches, device, warmup, steps, progress)
    peak = memory.peak_bytes()
    final_loss = float(loss)
    if not math.isfinite(final_loss):
        raise FloatingPointError(f"{row.name}: loss is {final_loss} after {warmup + steps} steps")
    median = statistics.median(times)
    achieved = flops_per_step / median / 1e12
    config = getattr(model, "config", None)
    record = {
        "name": row.name,
        "group": row.group,
        "shape": row.shape.label,
        "variant": row.variant.name,
        "description": row.variant.description,
        "baseline": row.baseline,
        "image_size": row.shape.image_size,
        "patch_size": row.shape.patch_size or None,
        "batch_size": row.shape.batch_size,
        "compiled": row.variant.compile,
        "compile_mode": (compile_mode or "default") if row.variant.compile else None,
        "channels_last": row.variant.channels_last,
        "bf16_autocast": device.type == "cuda" or row.variant.autocast_bf16,
        "sdpa_backend": row.variant.sdpa_backend,
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "num_parameters": sum(parameter.numel() for parameter in model.parameters()),
        "step_times_s": times,
        "median_step_s": median,
        "min_step_s": min(times),
        "images_per_second": row.shape.batch_size / median,
        "flops_per_step": flops_per_step,
        "achieved_tflops": achieved,
        "mfu": achieved / peak_tflops if peak_tflops else None,
        "peak_memory_bytes": peak,
        "memory_kind": memory.kind,
        "final_loss": final_loss,
        "warmup_steps": warmup,
    }
    if profile_dir is not None:
        record["profile"] = profile_steps(step, batches, device, profile_dir / row.name.replace("/", "__"))
    del step, optimizer, step_model, model, batches
    if row.variant.compile:
        torch._dynamo.reset()
    if device.type == "cuda":
        gc.collect()  # ~0.5 s with transformers imported: only where the freed memory matters
        torch.cuda.empty_cache()
    return record


def merge_repeats(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row's records from the `--repeat` rounds (each with its round's `ratio`), as one: the round with
    the median images/s (the lower middle one for an even count), every round's rate and ratio in
    `images_per_second_repeats` and `ratio_repeats`, and `ratio` = the median of the rounds' ratios (on a
    shared CPU the load drifts between rounds more than between neighbouring rows); the first error or
    skip if any round had one."""
    failed = [run for run in runs if "images_per_second" not in run]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda run: run["images_per_second"])
    record = dict(ordered[(len(ordered) - 1) // 2])
    record["images_per_second_repeats"] = [run["images_per_second"] for run in runs]
    record["ratio_repeats"] = [run.get("ratio") for run in runs]
    known = [ratio for ratio in record["ratio_repeats"] if ratio is not None]
    record["ratio"] = statistics.median(known) if len(known) == len(runs) else None
    return record


def add_ratios(records: list[dict[str, Any]]) -> None:
    """`ratio` = images/s of the row over images/s of its baseline row (None if the baseline did not run)."""
    rates = {record["name"]: record.get("images_per_second") for record in records}
    for record in records:
        baseline_rate = rates.get(record["baseline"])
        rate = record.get("images_per_second")
        record["ratio"] = rate / baseline_rate if rate and baseline_rate else None


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()}"


def environment(device: torch.device, preset: Preset, argv: Sequence[str]) -> dict[str, Any]:
    import timm
    import transformers

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "device": device_name(device),
        "device_type": device.type,
        "cpu_threads": torch.get_num_threads(),
        "dtype": "bf16 autocast" if device.type == "cuda" else "fp32",
        "preset": preset.name,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", "bench/bench_models.py", *argv]),
        "git_commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "timm": timm.__version__,
    }


def _format_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    if value >= 2**30:
        return f"{value / 2**30:.2f} GiB"
    return f"{value / 2**20:.0f} MiB"


def format_table(records: Sequence[dict[str, Any]]) -> str:
    width = max([34, *(len(record["name"]) for record in records)])  # the knob rows have longer names
    header = (
        f"{'row':<{width}} {'img/s':>10} {'ratio':>6}  {'vs':<16} {'peak mem':>10} {'TFLOP/s':>8} {'MFU':>6}"
    )
    lines = [header, "-" * len(header)]
    for record in records:
        if "error" in record:
            lines.append(f"{record['name']:<{width}} ERROR: {record['error']}")
            continue
        if "skipped" in record:
            lines.append(f"{record['name']:<{width}} SKIPPED: {record['skipped']}")
            continue
        ratio = f"{record['ratio']:.2f}" if record.get("ratio") else "-"
        mfu = f"{100 * record['mfu']:.1f}%" if record.get("mfu") is not None else "-"
        baseline_variant = record["baseline"].rsplit("/", 1)[-1]
        lines.append(
            f"{record['name']:<{width}} {record['images_per_second']:>10.1f} {ratio:>6}  {baseline_variant:<16} "
            f"{_format_bytes(record['peak_memory_bytes']):>10} {record['achieved_tflops']:>8.3f} {mfu:>6}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), help="sizes: full (default on CUDA), cpu (default on CPU), smoke"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny configs, 2 timed steps, CPU, no torch.compile"
    )
    parser.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    parser.add_argument(
        "--rows", help="comma-separated glob patterns of row names (their baselines are added)"
    )
    parser.add_argument("--list", action="store_true", help="print the row names and exit")
    parser.add_argument("--warmup", type=int, help="untimed steps per row (default: the preset's)")
    parser.add_argument(
        "--steps", type=int, help="timed steps per row, median reported (default: the preset's)"
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="include the torch.compile rows (default: on CUDA only)",
    )
    parser.add_argument(
        "--compile-mode",
        choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        help="torch.compile mode of the compiled rows (reduce-overhead: CUDA graphs, fewer launch gaps)",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        help=f"peak for MFU (default {H100_BF16_DENSE_TFLOPS:g} on CUDA: H100 bf16 dense; none on CPU)",
    )
    parser.add_argument(
        "--knobs",
        action="store_true",
        help="include the CPU-lever rows (ours-bf16, ours-channels-last, ours-attn-eager, ours-sdpa-*, "
        "ours-width-x*), each against the row's `ours`; e.g. with --preset study",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time the selected rows this many rounds, interleaved (every row once per round); each row "
        "reports its median round and the median of its per-round ratios (default 1)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 with --smoke)")
    parser.add_argument("--json", type=Path, help="write every row (and the environment) to this JSON file")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after timing, profile 2 more steps of each row: DIR/<row>.txt (top ops by self time), "
        "DIR/<row>.trace.json (Chrome/Perfetto trace); the top 10 ops go into the JSON too",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.smoke:
        args.preset, args.device = "smoke", args.device or "cpu"
        args.compile = False if args.compile is None else args.compile
        args.threads = args.threads or 1  # tiny ops: extra threads only spin on a shared CPU
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    preset = PRESETS[args.preset or ("full" if device.type == "cuda" else "cpu")]
    compile_rows = device.type == "cuda" if args.compile is None else args.compile
    peak_tflops = args.peak_tflops or (H100_BF16_DENSE_TFLOPS if device.type == "cuda" else None)
    warmup = preset.warmup if args.warmup is None else args.warmup
    steps = preset.steps if args.steps is None else args.steps
    if steps < 1 or warmup < 0 or args.repeat < 1:
        raise SystemExit("--steps and --repeat must be >= 1 and --warmup >= 0")
    rows = select_rows(make_rows(preset, compile_rows=compile_rows, knob_rows=args.knobs), args.rows)
    if args.list:
        width = max(34, *(len(row.name) for row in rows))
        print(
            "\n".join(
                f"{row.name:<{width}} vs {row.variant.baseline:<16} {row.variant.description}" for row in rows
            )
        )
        return 0

    threads_before = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, argv, device, preset, rows, warmup, steps, peak_tflops)
    finally:
        torch.set_num_threads(threads_before)  # main() may run inside another process (the tests)


def _run(args, argv, device, preset, rows, warmup, steps, peak_tflops) -> int:
    from tqdm.auto import tqdm

    env = environment(device, preset, argv)
    print(
        f"# {env['device']} | torch {env['torch']} | {env['dtype']} | preset {preset.name} | "
        f"warm-up {warmup}, {steps} timed steps (median)"
        + (f", {args.repeat} interleaved rounds (median)" if args.repeat > 1 else "")
        + f" | {env['date']}",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {row.name: [] for row in rows}
    bar = tqdm(
        [row for _ in range(args.repeat) for row in rows], desc="bench_models", unit="row", file=sys.stderr
    )
    for row in bar:
        bar.set_postfix_str(row.name)
        try:
            runs[row.name].append(
                run_row(
                    row,
                    device,
                    warmup,
                    steps,
                    peak_tflops,
                    compile_mode=args.compile_mode,
                    profile_dir=args.profile,
                )
            )
        except Exception as error:  # keep timing the other rows; reported and reflected in the exit code
            record = {"name": row.name, "group": row.group, "baseline": row.baseline, "error": repr(error)}
            if row.variant.sdpa_backend and "No viable backend" in str(error):
                record["skipped"] = f"no {row.variant.sdpa_backend} kernel for these inputs on {device.type}"
                del record["error"]  # a kernel this device lacks: reported, not a failure
            runs[row.name].append(record)
            if device.type == "cuda":
                gc.collect()
                torch.cuda.empty_cache()
    bar.close()
    if args.repeat == 1:
        records = [row_runs[0] for row_runs in runs.values()]
        add_ratios(records)
    else:
        for index in range(args.repeat):  # within a round, a row and its baseline ran close in time
            add_ratios([row_runs[index] for row_runs in runs.values()])
        records = [merge_repeats(row_runs) for row_runs in runs.values()]
    print(format_table(records), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"environment": env, "peak_tflops": peak_tflops, "rows": records}, indent=2)
        )
        print(f"# wrote {args.json}")
    return 1 if any("error" in record for record in records) else 0


if __name__ == "__main__":
    sys.exit(main())
