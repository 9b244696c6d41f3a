"""Per-image random streams: image ``i`` depends only on ``(seed, class_name, i)``.

Every image owns a CPU ``torch.Generator`` (Mersenne twister) seeded with a 63-bit key mixed from the
dataset seed, a stable hash of the class name and the image index (SplitMix64 finaliser). All random
numbers of one image (its parameters, its substructure, its noise) are drawn from that generator in a
fixed order, stacked over the batch and only then moved to the device. So an image never depends on
the batch it is simulated in, on the batch order or on the device that does the arithmetic.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import torch

_MASK64 = (1 << 64) - 1


def _splitmix64(value: int) -> int:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit integer mix."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def stream_name_id(name: str) -> int:
    """Stable 32-bit id of a class (or stream) name: CRC-32 of its UTF-8 bytes."""
    return zlib.crc32(name.encode("utf-8"))


def image_key(seed: int, name: str, index: int) -> int:
    """63-bit generator seed of image ``index`` of class ``name`` in the data set of ``seed``."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed ({seed}) and image index ({index}) must be non-negative")
    key = _splitmix64(seed & _MASK64)
    key = _splitmix64(key ^ stream_name_id(name))
    key = _splitmix64(key ^ (index & _MASK64))
    return key >> 1  # torch.Generator.manual_seed takes values below 2**63


def image_generators(seed: int, name: str, indices: Iterable[int]) -> list[torch.Generator]:
    """One seeded CPU generator per image."""
    return [torch.Generator().manual_seed(image_key(seed, name, int(i))) for i in indices]


def draw_uniform(generators: list[torch.Generator], size: int) -> torch.Tensor:
    """``size`` uniforms in [0, 1) per image, shape ``(len(generators), size)``, float64 on the CPU.

    Float64 keeps the resolution needed to map uniforms onto wide log-ranges (subhalo masses).
    """
    return torch.stack([torch.rand(size, generator=g, dtype=torch.float64) for g in generators])


def draw_normal(generators: list[torch.Generator], size: int) -> torch.Tensor:
    """``size`` standard normals per image, shape ``(len(generators), size)``, float32 on the CPU."""
    return torch.stack([torch.randn(size, generator=g) for g in generators])


def draw_uniform32(generators: list[torch.Generator], size: int) -> torch.Tensor:
    """``size`` float32 uniforms in [0, 1) per image, shape ``(len(generators), size)``."""
    return torch.stack([torch.rand(size, generator=g) for g in generators])
