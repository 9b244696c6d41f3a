import pytest
import torch

from hf_deeplense.data import LensingAugment, MultiCropTransform, TwoViewTransform
from hf_deeplense.data.transforms import random_square_crops


def d4_images(image):
    """The 8 images of the dihedral group D4 acting on one (C, H, W) image."""
    rotations = [torch.rot90(image, k, dims=(1, 2)) for k in range(4)]
    return rotations + [r.flip(-1) for r in rotations]


def which(candidates, image):
    matches = [i for i, candidate in enumerate(candidates) if torch.equal(candidate, image)]
    assert len(matches) == 1, "output is not exactly one transform of its input"
    return matches[0]


@pytest.fixture
def batch():
    return torch.randn(64, 2, 9, 9, generator=torch.Generator().manual_seed(0))


def test_rotations_and_flips_are_the_d4_group(batch):
    out = LensingAugment()(batch, generator=torch.Generator().manual_seed(1))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    seen = [which(d4_images(x), y) for x, y in zip(batch, out)]
    assert set(seen) == set(range(8))  # 64 draws hit every group element
    out = LensingAugment(flip=False)(batch, generator=torch.Generator().manual_seed(1))
    assert {which(d4_images(x), y) for x, y in zip(batch, out)} == {0, 1, 2, 3}
    out = LensingAugment(rotate90=False)(batch, generator=torch.Generator().manual_seed(1))
    assert {which(d4_images(x), y) for x, y in zip(batch, out)} == {0, 4}


def test_same_generator_same_output(batch):
    augment = LensingAugment(max_shift=2, noise_std=0.1)
    first = augment(batch, generator=torch.Generator().manual_seed(7))
    second = augment(batch, generator=torch.Generator().manual_seed(7))
    other = augment(batch, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert not torch.equal(first, batch)


def test_shifts_are_periodic_and_bounded(batch):
    out = LensingAugment(rotate90=False, flip=False, max_shift=2)(
        batch, generator=torch.Generator().manual_seed(3)
    )
    shifts = set()
    for x, y in zip(batch, out):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(torch.roll(x, (dy, dx), (1, 2)), y)
        ]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 10


def test_noise_statistics():
    images = torch.zeros(256, 1, 16, 16)
    out = LensingAugment(rotate90=False, flip=False, noise_std=0.5)(
        images, generator=torch.Generator().manual_seed(0)
    )
    assert abs(out.mean().item()) < 0.01 and abs(out.std().item() - 0.5) < 0.01


def test_invalid_inputs():
    with pytest.raises(ValueError, match="square"):
        LensingAugment()(torch.zeros(2, 1, 8, 6))
    with pytest.raises(ValueError, match="batch, channels"):
        LensingAugment()(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError):
        LensingAugment(noise_std=-1)
    assert LensingAugment(rotate90=False)(torch.zeros(2, 1, 8, 6)).shape == (2, 1, 8, 6)


def test_two_views_are_independent_d4_views(batch):
    views = TwoViewTransform()(batch, generator=torch.Generator().manual_seed(0))
    assert set(views) == {"pixel_values", "pixel_values_2"}
    first = [which(d4_images(x), y) for x, y in zip(batch, views["pixel_values"])]
    second = [which(d4_images(x), y) for x, y in zip(batch, views["pixel_values_2"])]
    assert first != second


def sequential_augment(augment, pixel_values, generator):
    """The augmentation written plainly (rotate, flip, shift with `torch.roll` image by image, add noise), drawing
    the random numbers in the order `LensingAugment` documents: turns, flips, shifts, noise."""
    batch, _, height, width = pixel_values.shape
    output = pixel_values.clone()
    if augment.rotate90:
        turns = torch.randint(0, 4, (batch,), generator=generator)
        for k in (1, 2, 3):
            output[turns == k] = torch.rot90(output[turns == k], k, dims=(2, 3))
    if augment.flip:
        flipped = torch.rand(batch, generator=generator) < 0.5
        output = torch.where(flipped[:, None, None, None], output.flip(-1), output)
    if augment.max_shift:
        shifts = torch.randint(-augment.max_shift, augment.max_shift + 1, (2, batch), generator=generator)
        output = torch.stack(
            [torch.roll(image, (int(dy), int(dx)), dims=(1, 2)) for image, dy, dx in zip(output, *shifts)]
        )
    if augment.noise_std:
        output = output + augment.noise_std * torch.randn(
            output.shape, generator=generator, dtype=output.dtype
        )
    return output


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"flip": False},
        {"rotate90": False},
        {"max_shift": 3},
        {"max_shift": 2, "noise_std": 0.1},
        {"rotate90": False, "flip": False, "max_shift": 1},
        {"rotate90": False, "flip": False},
    ],
)
def test_augment_equals_the_plain_reference(kwargs):
    """Pins the composition order and the draw order (a resumed run re-draws the same augmentations)."""
    augment = LensingAugment(**kwargs)
    for shape in [(50, 3, 7, 7), (20, 1, 16, 16)] + ([] if augment.rotate90 else [(30, 2, 5, 8)]):
        images = torch.randn(shape, generator=torch.Generator().manual_seed(3))
        expected = sequential_augment(augment, images, torch.Generator().manual_seed(4))
        torch.testing.assert_close(
            augment(images, generator=torch.Generator().manual_seed(4)), expected, rtol=0, atol=0
        )


def column_ramp(batch: int, size: int) -> torch.Tensor:
    """Images whose pixel value is the column index: a crop's column slope is its side over the image side."""
    return torch.arange(size, dtype=torch.float32).expand(batch, 1, size, size).clone()


def test_full_area_square_crops_are_the_image():
    images = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    crops = random_square_crops(images, 2, (1.0, 1.0), 8, generator=torch.Generator().manual_seed(1))
    assert crops.shape == (2, 3, 2, 8, 8)
    torch.testing.assert_close(crops, images.expand(2, -1, -1, -1, -1))


def test_square_crops_cover_the_requested_area_inside_the_image():
    images = column_ramp(64, 16)
    crops = random_square_crops(images, 3, (0.1, 0.4), 16, generator=torch.Generator().manual_seed(0))
    slopes = crops[..., 1:].diff(dim=-1).mean(dim=(-1, -2, -3))  # (crops, batch): crop side / image side
    assert ((slopes**2 > 0.1 - 1e-4) & (slopes**2 < 0.4 + 1e-4)).all()
    assert (slopes**2).max() - (slopes**2).min() > 0.2  # areas spread over the range
    # inside the image: every column step is the same (a crop reaching past the edge would be clamped there)
    torch.testing.assert_close(crops.diff(dim=-1), slopes[..., None, None, None].expand(3, 64, 1, 16, 15))
    # rows are unchanged along a column ramp: a square crop, no rotation
    torch.testing.assert_close(crops, crops[..., :1, :].expand_as(crops))


def test_multi_crop_views():
    images = column_ramp(5, 16)
    multi_crop = MultiCropTransform(3, (0.4, 1.0), (0.1, 0.3), LensingAugment(rotate90=False, flip=False))
    views = multi_crop(images, generator=torch.Generator().manual_seed(0))
    assert views["pixel_values"].shape == views["pixel_values_2"].shape == (5, 1, 16, 16)
    assert views["local_pixel_values"].shape == (5, 3, 1, 16, 16)
    again = multi_crop(images, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(views[name], again[name]) for name in views)  # same generator, same crops
    global_slopes = (
        torch.stack([views["pixel_values"], views["pixel_values_2"]])[..., 1:].diff(dim=-1).mean((-1, -2, -3))
    )
    local_slopes = views["local_pixel_values"][..., 1:].diff(dim=-1).mean((-1, -2, -3))
    assert (global_slopes**2 > 0.4 - 1e-4).all() and (local_slopes**2 < 0.3 + 1e-4).all()
    assert set(MultiCropTransform(0)(images)) == {"pixel_values", "pixel_values_2"}
    with pytest.raises(ValueError, match="scale"):
        MultiCropTransform(2, local_crop_scale=(0.5, 0.2))(images)
