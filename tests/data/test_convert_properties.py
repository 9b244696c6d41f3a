"""Property tests: the converter's per-file validation gives a clean image or a reported skip, never a crash."""

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hf_deeplense.data import SkipFile, load_example
from hf_deeplense.data.convert import image_from_array

DTYPES = st.sampled_from(
    [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int32, np.int64, np.bool_, np.complex64, "U3"]
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9)


def nan_spiked(draw, array):
    """Put NaN / inf at random places of a float array."""
    if array.dtype.kind == "f" and array.size:
        for _ in range(draw(st.integers(0, 3))):
            index = draw(st.integers(0, array.size - 1))
            array.reshape(-1)[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return array


@st.composite
def arrays(draw):
    array = draw(hnp.arrays(DTYPES, SHAPES))
    return nan_spiked(draw, array)


def check_clean(image, expected_shape=None):
    assert image.dtype == np.float32 and image.ndim == 3 and image.flags.c_contiguous
    assert image.shape[0] <= 4 and np.isfinite(image).all()
    if expected_shape is not None:
        assert image.shape == tuple(expected_shape)


@settings(max_examples=300, deadline=None)
@given(arrays(), st.sampled_from([None, (1, 5, 5), (3, 6, 7)]))
def test_image_from_array_is_clean_or_skipped(array, expected_shape):
    try:
        image = image_from_array(array, expected_shape)
    except SkipFile as error:
        assert str(error)
        return
    check_clean(image, expected_shape)
    flat = np.asarray(array, dtype=np.float64)
    assert np.isfinite(flat).all()
    np.testing.assert_allclose(np.sort(image, axis=None), np.sort(flat.astype(np.float32), axis=None))


@st.composite
def npy_files(draw):
    """A saved array, an `[image, mass]` object array, or random / cut bytes."""
    kind = draw(st.sampled_from(["array", "object", "bytes", "cut"]))
    if kind == "bytes":
        return None, draw(st.binary(max_size=200))
    array = draw(arrays())
    if kind == "object":
        mass = draw(st.one_of(st.floats(allow_nan=True), st.integers(-5, 5), st.text(max_size=3)))
        obj = np.empty(draw(st.integers(1, 3)), dtype=object)
        obj[0] = array
        if len(obj) > 1:
            obj[1] = mass
        array = obj
    return array, draw(st.integers(0, 400)) if kind == "cut" else None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(npy_files(), st.booleans())
def test_load_example_never_crashes(case, allow_pickle):
    array, extra = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.npy"
        if array is None:
            path.write_bytes(extra)
        else:
            np.save(path, array, allow_pickle=True)
            if extra is not None:  # truncate
                path.write_bytes(path.read_bytes()[:extra])
        try:
            image, log10_mass = load_example(path, allow_pickle=allow_pickle)
        except SkipFile as error:
            assert str(error)
            if array is not None and array.dtype == object and extra is None and not allow_pickle:
                assert "--allow-pickle" in str(error)
            return
    check_clean(image)
    assert np.isnan(log10_mass) or np.isfinite(log10_mass)
    if array is not None and array.dtype == object:
        assert allow_pickle
