import matplotlib.image
import numpy as np
import pytest

from hf_deeplense.evaluation.plots import (
    plot_cam_overlays,
    plot_confusion_matrix,
    plot_embedding_2d,
    plot_loss_curves,
    plot_mae_reconstructions,
    plot_regression_scatter,
    plot_roc_curves,
)


def _read_png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # not a blank canvas
    assert image[..., :3].std() > 0.01
    return image


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_classification_plots(tmp_path, rng):
    labels = rng.integers(0, 3, size=60)
    logits = rng.normal(size=(60, 3)) + 2 * np.eye(3)[labels]
    path = plot_roc_curves(logits, labels, ["no_sub", "cdm", "axion"], tmp_path / "roc.png")
    assert path == str(tmp_path / "roc.png")
    _read_png(path)
    _read_png(
        plot_confusion_matrix(
            np.array([[5, 1, 0], [2, 4, 1], [0, 0, 7]]), ["a", "b", "c"], tmp_path / "cm.png"
        )
    )


def test_loss_curves(tmp_path):
    history = [{"loss": 1.0 / (step + 1), "step": step} for step in range(1, 20)]
    history += [
        {"eval_loss": 0.5, "step": 10},
        {"eval_loss": 0.3, "step": 19},
        {"train_runtime": 3.0, "step": 19},
    ]
    _read_png(plot_loss_curves(history, tmp_path / "sub" / "loss.png"))
    # an empty history still writes a figure
    assert (tmp_path / "empty.png").name in plot_loss_curves([], tmp_path / "empty.png")


def test_image_grids(tmp_path, rng):
    images = rng.random((4, 1, 16, 16)).astype(np.float32)
    masked = images.copy()
    masked[:, :, :8] = 0
    _read_png(plot_mae_reconstructions(images, masked, images + 0.1, tmp_path / "mae.png", max_images=3))
    maps = rng.random((5, 16, 16))
    rgb = rng.random((5, 3, 16, 16))
    _read_png(plot_cam_overlays(rgb, maps, tmp_path / "cam.png", titles=[f"class {i}" for i in range(5)]))


def test_regression_scatter(tmp_path, rng):
    targets = rng.uniform(-24, -22, size=50)
    targets[0] = np.nan  # a non-axion row is skipped
    _read_png(
        plot_regression_scatter(targets, targets + rng.normal(0, 0.1, size=50), tmp_path / "scatter.png")
    )


@pytest.mark.slow
def test_embedding_map_subsamples_reproducibly_and_takes_tiny_samples(tmp_path, rng):
    labels = rng.integers(0, 3, size=300)
    embeddings = rng.normal(size=(300, 8)) + 3 * np.eye(8)[labels]
    first = plot_embedding_2d(embeddings, labels, ["a", "b", "c"], tmp_path / "a.png", max_points=60, seed=1)
    again = plot_embedding_2d(embeddings, labels, ["a", "b", "c"], tmp_path / "b.png", max_points=60, seed=1)
    _read_png(first)
    assert open(first, "rb").read() == open(again, "rb").read()  # the same points, the same map
    _read_png(plot_embedding_2d(embeddings[:5], labels[:5], ["a", "b", "c"], tmp_path / "few.png"))
