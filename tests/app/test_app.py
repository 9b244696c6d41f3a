"""Tests of the demo app's logic (no browser): simulate, read files, predict."""

import numpy as np
import pytest

CLASS_NAMES = ["no_sub", "cdm", "axion"]  # the classes of the tiny_model_dir fixture


def test_simulate_image_uses_parameters_and_seed(demo_app):
    image, params = demo_app.simulate_image("model_ii", "cdm", theta_e=1.5, seed=3, image_size=32)
    assert image.shape == (1, 32, 32) and image.dtype == np.float32
    assert params["theta_e"] == pytest.approx(1.5)
    assert params["subhalo_mass_fraction"] > 0  # cdm has subhalos
    again, _ = demo_app.simulate_image("model_ii", "cdm", theta_e=1.5, seed=3, image_size=32)
    other, _ = demo_app.simulate_image("model_ii", "cdm", theta_e=1.5, seed=4, image_size=32)
    np.testing.assert_array_equal(image, again)
    assert not np.array_equal(image, other)


def test_simulate_image_rejects_unknown_class_and_preset(demo_app):
    with pytest.raises(ValueError, match="vortex"):
        demo_app.simulate_image("model_ii", "vortex", theta_e=1.2)
    with pytest.raises(ValueError, match="lens_finding"):
        demo_app.simulate_image("lens_finding", "lens", theta_e=1.2)


def test_predict_gives_probabilities_and_cam(demo_app, tiny_model_dir):
    loaded = demo_app.load_model(tiny_model_dir)
    assert loaded.class_names == CLASS_NAMES
    image, _ = demo_app.simulate_image("model_ii", "no_sub", theta_e=1.2, seed=0)
    scores, display, overlay = demo_app.predict(loaded, image)
    assert list(scores) == CLASS_NAMES
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0 <= value <= 1 for value in scores.values())
    assert display.shape == overlay.shape and display.shape[0] >= demo_app.DISPLAY_SIZE
    assert display.dtype == overlay.dtype == np.uint8
    assert not np.array_equal(display, overlay)  # the CAM is drawn over the input
    # the same image from a file gives the same prediction
    scores_again, _, _ = demo_app.predict(loaded, image[0])
    assert scores_again == pytest.approx(scores)


def test_read_image_file_npy_and_fits(demo_app, tmp_path):
    from astropy.io import fits

    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    np.save(tmp_path / "lens.npy", image[None])
    fits.PrimaryHDU(image).writeto(tmp_path / "lens.fits")
    np.testing.assert_array_equal(demo_app.read_image_file(tmp_path / "lens.npy"), image)
    np.testing.assert_array_equal(demo_app.read_image_file(tmp_path / "lens.fits"), image)


def test_read_image_file_errors_name_the_file(demo_app, tmp_path):
    pickled = np.empty(2, dtype=object)
    pickled[0], pickled[1] = np.zeros((4, 4)), 1e-23
    np.save(tmp_path / "deeplense_pair.npy", pickled, allow_pickle=True)
    with pytest.raises(ValueError, match="deeplense_pair.npy.*pickle"):
        demo_app.read_image_file(tmp_path / "deeplense_pair.npy")
    (tmp_path / "lens.png").write_bytes(b"")
    with pytest.raises(ValueError, match="lens.png"):
        demo_app.read_image_file(tmp_path / "lens.png")
    np.save(tmp_path / "vector.npy", np.zeros(5))
    with pytest.raises(ValueError, match="vector.npy"):
        demo_app.read_image_file(tmp_path / "vector.npy")


def test_load_model_without_config_names_the_directory(demo_app, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        demo_app.load_model(tmp_path)
