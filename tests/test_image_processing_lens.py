"""Tests of `LensImageProcessor`: layouts, normalisation, resize/crop, channel checks, errors, save/load."""

import ast
import pathlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from hf_deeplense.image_processing_lens import CHUNK_ELEMENTS, LensImageProcessor

SIZE = 8


def _pixels(processor: LensImageProcessor, images, **kwargs) -> np.ndarray:
    return processor(images, return_tensors="np", **kwargs)["pixel_values"]


@pytest.mark.parametrize(
    "shape, input_data_format",
    [
        ((12, 10), None),
        ((1, 12, 10), None),
        ((12, 10, 1), None),
        ((12, 10, 1), "channels_last"),
        ((1, 12, 10), "channels_first"),
    ],
)
def test_single_channel_layouts_give_the_same_pixels(shape, input_data_format):
    base = np.random.default_rng(0).normal(size=(12, 10))
    image = base.reshape(shape)
    processor = LensImageProcessor(size=SIZE)
    expected = _pixels(processor, base)
    out = _pixels(processor, image, input_data_format=input_data_format)
    assert out.shape == (1, 1, SIZE, SIZE) and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_channels_last_three_band_batch_matches_channels_first():
    batch_cf = np.random.default_rng(1).random((4, 3, 20, 20)).astype(np.float32)
    batch_cl = batch_cf.transpose(0, 2, 3, 1)  # (N, H, W, C)
    processor = LensImageProcessor(num_channels=3, size=SIZE)
    np.testing.assert_array_equal(_pixels(processor, batch_cl), _pixels(processor, batch_cf))
    # explicit layout overrides inference: (3, 20, 3) is ambiguous and read channels-first by default
    ambiguous = np.random.default_rng(2).random((3, 20, 3))
    explicit = _pixels(processor, ambiguous, input_data_format="channels_last")
    np.testing.assert_array_equal(explicit, _pixels(processor, ambiguous.transpose(2, 0, 1)))


def test_list_of_mixed_types_and_batches():
    rng = np.random.default_rng(3)
    images = [
        rng.random((16, 16)),
        torch.rand(2, 1, 16, 16),  # a batch inside a list contributes its rows
        rng.integers(0, 255, (16, 16), dtype=np.uint8),
    ]
    out = LensImageProcessor(size=SIZE)(images, return_tensors="pt")["pixel_values"]
    assert isinstance(out, torch.Tensor) and out.shape == (4, 1, SIZE, SIZE) and out.dtype == torch.float32
    np.testing.assert_allclose(out[1].numpy(), _pixels(LensImageProcessor(size=SIZE), images[1][0])[0])


def test_minmax_maps_to_unit_interval_and_constant_image_to_zeros():
    processor = LensImageProcessor(size=4, do_resize=False)
    image = np.arange(16, dtype=np.float64).reshape(4, 4) * 3 - 7
    out = _pixels(processor, image)[0, 0]
    np.testing.assert_allclose(out, (image - image.min()) / (image.max() - image.min()), rtol=1e-6)
    assert out.min() == 0 and out.max() == 1
    np.testing.assert_array_equal(_pixels(processor, np.full((4, 4), 5.0)), np.zeros((1, 1, 4, 4)))
    extreme = np.array([[3e38, -3e38], [0, 1]], dtype=np.float32)
    out = _pixels(LensImageProcessor(size=2), extreme)[0, 0]
    np.testing.assert_allclose(out, [[1, 0], [0.5, 0.5]], atol=1e-6)


def test_mean_std_normalisation_per_channel():
    processor = LensImageProcessor(
        num_channels=2,
        size=3,
        do_resize=False,
        normalization="mean_std",
        image_mean=[1.0, -2.0],
        image_std=[2.0, 4.0],
    )
    image = np.stack([np.full((3, 3), 5.0), np.full((3, 3), 2.0)])
    out = _pixels(processor, image)
    np.testing.assert_allclose(out[0, 0], 2.0)
    np.testing.assert_allclose(out[0, 1], 1.0)
    with pytest.raises(ValueError, match="image_std"):
        LensImageProcessor(normalization="mean_std", image_mean=0.0, image_std=0.0)
    with pytest.raises(ValueError, match="image_mean"):
        LensImageProcessor(normalization="mean_std")


def test_resize_is_torch_bilinear_and_center_crop_takes_the_middle():
    image = np.random.default_rng(4).random((1, 10, 10))
    processor = LensImageProcessor(size=5, normalization="none")
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(image)[None], size=(5, 5), mode="bilinear", align_corners=False, antialias=True
    )
    np.testing.assert_allclose(_pixels(processor, image), expected.float().numpy(), rtol=1e-6)
    crop = LensImageProcessor(size=4, do_center_crop=True, normalization="none")
    np.testing.assert_array_equal(_pixels(crop, image)[0], image[:, 3:7, 3:7].astype(np.float32))
    with pytest.raises(ValueError, match=r"item 0.*\(1, 10, 10\).*crop_size=12"):
        crop([image], crop_size=12)


def test_grey_is_repeated_only_when_allowed():
    image = np.random.default_rng(5).random((8, 8))
    with pytest.raises(ValueError, match=r"1 channel.*num_channels=3.*repeat_grey_channels"):
        LensImageProcessor(num_channels=3, size=SIZE)(image)
    out = _pixels(LensImageProcessor(num_channels=3, size=SIZE, repeat_grey_channels=True), image)
    assert out.shape == (1, 3, SIZE, SIZE)
    np.testing.assert_array_equal(out[0, 0], out[0, 2])


def test_pil_images():
    rng = np.random.default_rng(6)
    grey = (rng.random((12, 12)) * 255).astype(np.uint8)
    processor = LensImageProcessor(size=SIZE)
    from_array = _pixels(processor, grey)
    np.testing.assert_allclose(_pixels(processor, Image.fromarray(grey)), from_array)  # mode L
    # transformers.pipeline converts every image to RGB: a grey RGB image gives the same pixels
    np.testing.assert_allclose(
        _pixels(processor, Image.fromarray(grey).convert("RGB")), from_array, atol=1e-6
    )
    floats = rng.normal(size=(12, 12)).astype(np.float32)
    np.testing.assert_allclose(
        _pixels(processor, Image.fromarray(floats, mode="F")), _pixels(processor, floats)
    )
    rgb = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
    out = _pixels(LensImageProcessor(num_channels=3, size=SIZE), Image.fromarray(rgb))
    np.testing.assert_allclose(out, _pixels(LensImageProcessor(num_channels=3, size=SIZE), rgb))
    # arrays with 3 channels are never averaged for a 1-channel model
    with pytest.raises(ValueError, match="3 channel"):
        processor(rgb)


@pytest.mark.parametrize(
    "images, message",
    [
        ([], "empty list"),
        (np.zeros((0, 1, 8, 8)), "empty batch"),
        (np.zeros((1, 0, 8)), "empty"),
        (np.zeros(8), r"shape \(8,\)"),
        (np.zeros((2, 1, 1, 8, 8)), r"shape \(2, 1, 1, 8, 8\)"),
        (
            [np.zeros((8, 8)), np.zeros((2, 8, 8))],
            r"item 1 has 2 channel\(s\) \(shape \(C, H, W\) = \(2, 8, 8\)\)",
        ),
        (np.array([[1, "a"]], dtype=object), "dtype object"),
        (np.ones((4, 4), dtype=np.complex64), "dtype complex64"),
        (["file.png"], "item 0 has type str"),
        (
            [np.zeros((4, 4)), np.array([[1.0, np.inf], [0, 0]])],
            r"item 1 \(shape \(C, H, W\) = \(1, 2, 2\)\) has 1 NaN/inf",
        ),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_item(images, message):
    with pytest.raises(ValueError, match=message):
        LensImageProcessor(size=SIZE)(images)


def test_batch_row_is_named_in_errors():
    batch = np.zeros((3, 1, 8, 8))
    batch[2, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"item 2 \(shape"):
        LensImageProcessor(size=SIZE)(batch)
    with pytest.raises(ValueError, match=r"item 1 \(batch row 2\)"):
        LensImageProcessor(size=SIZE)([np.zeros((8, 8)), batch])


def test_a_batch_is_processed_as_its_images_one_by_one_across_chunks():
    """Batches are processed in cache-sized chunks of whole-chunk tensor operations: each image's output must
    still depend on that image only (per-image min-max, not per chunk or per batch)."""
    rng = np.random.default_rng(0)
    rows = CHUNK_ELEMENTS // (2 * 40 * 40) * 2 + 3  # more than two chunks, the last one partial
    batch = rng.standard_normal((rows, 2, 40, 40)) * rng.uniform(0.1, 100, (rows, 1, 1, 1))
    batch[5] = 7.0  # a constant image inside a chunk
    processor = LensImageProcessor(num_channels=2, size=40)  # no resize: each image spans [0, 1] exactly
    together = _pixels(processor, batch.astype(np.float32))
    one_by_one = np.concatenate([_pixels(processor, image.astype(np.float32)) for image in batch])
    np.testing.assert_array_equal(together, one_by_one)
    assert not together[5].any()
    assert (together[6:].min(axis=(1, 2, 3)) == 0).all() and (together[6:].max(axis=(1, 2, 3)) == 1).all()
    batch[rows - 2, 1, 3, 4] = np.inf  # in the last chunk: named by its row in the whole batch
    with pytest.raises(ValueError, match=rf"item {rows - 2} \(shape \(C, H, W\) = \(2, 40, 40\)\) has 1 NaN"):
        processor(batch)


@pytest.mark.parametrize(
    "dtype", [np.uint16, np.uint32, np.uint64, np.int16, np.float16, bool, ">f4", ">i2", ">u2", ">f8"]
)
def test_integer_bool_and_half_dtypes(dtype):
    image = (np.arange(64).reshape(1, 8, 8) % 7).astype(dtype)
    expected = _pixels(LensImageProcessor(size=SIZE), image.astype(np.float64))
    np.testing.assert_array_equal(_pixels(LensImageProcessor(size=SIZE), image), expected)


def test_without_resize_shapes_must_agree():
    processor = LensImageProcessor(size=SIZE, do_resize=False)
    with pytest.raises(ValueError, match="different shapes"):
        processor([np.zeros((8, 8)), np.zeros((6, 6))])


def test_invalid_settings():
    with pytest.raises(ValueError, match="normalization"):
        LensImageProcessor(normalization="zscore")
    with pytest.raises(ValueError, match="size"):
        LensImageProcessor(size=0)
    with pytest.raises(TypeError, match="unknown arguments"):
        LensImageProcessor()(np.zeros((4, 4)), sizee=3)
    with pytest.raises(ValueError, match="input_data_format"):
        LensImageProcessor()(np.zeros((4, 4, 1)), input_data_format="last")


def test_save_and_load_round_trip(tmp_path):
    processor = LensImageProcessor(
        num_channels=3,
        size=12,
        do_center_crop=True,
        crop_size=20,
        normalization="mean_std",
        image_mean=[0.1, 0.2, 0.3],
        image_std=2.0,
    )
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    assert (tmp_path / "image_processing_lens.py").is_file()  # copied for remote code
    reloaded = LensImageProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == processor.to_dict()
    images = np.random.default_rng(7).random((2, 3, 24, 24))
    np.testing.assert_array_equal(_pixels(reloaded, images), _pixels(processor, images))
    assert LensImageProcessor.from_pretrained(tmp_path, size=6).size == 6


def test_module_imports_only_numpy_torch_transformers():
    source = pathlib.Path(LensImageProcessor.__module__.replace(".", "/") + ".py")
    tree = ast.parse((pathlib.Path(__file__).parents[1] / source).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots <= {"__future__", "collections", "typing", "numpy", "torch", "transformers"}


# -- property tests -------------------------------------------------------------------------------------

_finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
_image_shapes = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
    st.tuples(st.just(1), st.integers(1, 12), st.integers(1, 12)),
    st.tuples(st.integers(1, 3), st.just(1), st.integers(1, 12), st.integers(1, 12)),
)
_property_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_property_settings
@given(image=hnp.arrays(np.float64, _image_shapes, elements=_finite_floats), size=st.integers(1, 9))
def test_property_any_finite_image_gives_finite_unit_interval_output(image, size):
    out = _pixels(LensImageProcessor(size=size), image)
    batch = image.shape[0] if image.ndim == 4 else 1
    assert out.shape == (batch, 1, size, size)
    assert np.all(np.isfinite(out))
    assert out.min() >= 0.0 and out.max() <= 1.0


@_property_settings
@given(
    images=st.lists(
        hnp.arrays(
            np.float32,
            st.tuples(st.integers(1, 8), st.integers(1, 8)),
            elements=st.floats(-1e6, 1e6, width=32),
        ),
        min_size=1,
        max_size=5,
    ),
    data=st.data(),
)
def test_property_nan_anywhere_names_its_item(images, data):
    bad_index = data.draw(st.integers(0, len(images) - 1), label="bad_index")
    bad = images[bad_index].copy()
    row = data.draw(st.integers(0, bad.shape[0] - 1), label="row")
    column = data.draw(st.integers(0, bad.shape[1] - 1), label="column")
    bad[row, column] = np.nan
    images = images[:bad_index] + [bad] + images[bad_index + 1 :]
    with pytest.raises(
        ValueError, match=rf"item {bad_index} \(shape \(C, H, W\) = \(1, {bad.shape[0]}, {bad.shape[1]}\)\)"
    ):
        LensImageProcessor(size=4)(images)


@_property_settings
@given(
    image=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 8), st.integers(1, 8)), elements=st.floats(-1e3, 1e3)
    )
)
def test_property_mean_std_is_affine(image):
    processor = LensImageProcessor(size=5, normalization="mean_std", image_mean=2.0, image_std=4.0)
    raw = _pixels(LensImageProcessor(size=5, normalization="none"), image)
    np.testing.assert_allclose(_pixels(processor, image), (raw - 2.0) / 4.0, rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_remote_code_loads_without_hf_deeplense(tmp_path, fresh_python):
    """The copied image_processing_lens.py is enough: load it with trust_remote_code where hf_deeplense is absent."""
    saved = fresh_python.unique_dir(tmp_path, "saved")
    LensImageProcessor(size=6, num_channels=3).save_pretrained(saved)
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from transformers import AutoImageProcessor\n"
        "processor = AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)\n"
        "assert not type(processor).__module__.startswith('hf_deeplense'), type(processor).__module__\n"
        "print(processor(np.ones((8, 8, 3)), return_tensors='np')['pixel_values'].shape)\n"
    )
    assert fresh_python.run(script, saved, cwd=tmp_path, timeout=120).strip() == "(1, 3, 6, 6)"
