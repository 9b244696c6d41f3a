"""Tests of the `hf-deeplense` command line (`hf_deeplense.cli`)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

from hf_deeplense import (
    DeepLenseMAEConfig,
    DeepLenseMAEForPreTraining,
    DeepLenseViTConfig,
    DeepLenseViTForImageClassification,
    DeepLenseViTForRegression,
    LensImageProcessor,
)
from hf_deeplense.cli import main
from hf_deeplense.predict import ALLOW_PICKLE_WARNING, predict_files

LABELS = ["axion", "cdm", "no_sub"]


def _tiny_config(**kwargs) -> DeepLenseViTConfig:
    return DeepLenseViTConfig(
        image_size=16,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        **kwargs,
    )


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = _tiny_config(
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={name: index for index, name in enumerate(LABELS)},
    )
    path = tmp_path_factory.mktemp("classifier")
    DeepLenseViTForImageClassification(config).save_pretrained(path)
    LensImageProcessor(size=16).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def regression_dir(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("regression")
    DeepLenseViTForRegression(_tiny_config(num_targets=1, target_mean=-23.0, target_std=0.5)).save_pretrained(
        path
    )
    LensImageProcessor(size=16).save_pretrained(path)
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _reference_logits(model_dir: Path, model_class, image: np.ndarray) -> torch.Tensor:
    model = model_class.from_pretrained(model_dir).eval()
    pixels = LensImageProcessor.from_pretrained(model_dir)(image, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return model(pixel_values=pixels).logits[0]


class _WritesFileWhenUnpickled:
    """Unpickling this object creates `marker`: proof that a loader ran pickle."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_predict_mixed_inputs_writes_csv_and_reports_skipped(classifier_dir, tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    (images / "nested").mkdir(parents=True)
    good = rng.random((40, 40)).astype(np.float32)
    np.save(images / "a.npy", good)
    np.save(images / "nested" / "b_channels_last.npy", rng.random((40, 40, 1)))
    np.save(images / "nested" / "batch.npy", rng.random((2, 1, 20, 20)))
    np.savez(images / "pair.npz", first=rng.random((1, 30, 30)), second=rng.integers(0, 100, (30, 30)))
    fits.PrimaryHDU(rng.random((24, 24)).astype(">f4")).writeto(images / "primary.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(rng.random((24, 24)))]).writeto(images / "extension.fits")
    (images / "notes.txt").write_text("not an image: ignored inside a directory")
    # bad files
    nan_image = good.copy()
    nan_image[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan_image)
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(tmp_path / "three_channels.npy", rng.random((3, 16, 16)))
    np.save(tmp_path / "flat.npy", rng.random(4097))
    marker = tmp_path / "unpickled"
    np.save(
        tmp_path / "axion_object.npy", np.array([_WritesFileWhenUnpickled(str(marker)), 1e-22], dtype=object)
    )
    (tmp_path / "table.csv").write_text("a,b\n")
    output = tmp_path / "out" / "preds.csv"

    bad = [
        "nan.npy",
        "corrupt.npy",
        "three_channels.npy",
        "flat.npy",
        "axion_object.npy",
        "table.csv",
        "missing.npy",
    ]
    code = main(
        ["predict", "--model", str(classifier_dir), str(images), *(str(tmp_path / name) for name in bad)]
        + ["--output", str(output), "--batch-size", "3"]
    )
    assert code == 0
    assert not marker.exists(), "the CLI unpickled a file"
    rows = _read_csv(output)
    names = [row["file"] for row in rows]
    assert names == [
        str(images / "a.npy"),
        str(images / "extension.fits"),
        str(images / "nested" / "b_channels_last.npy"),
        str(images / "nested" / "batch.npy") + "[0]",
        str(images / "nested" / "batch.npy") + "[1]",
        str(images / "pair.npz") + ":first",
        str(images / "pair.npz") + ":second",
        str(images / "primary.fits"),
    ]
    assert list(rows[0]) == ["file", "predicted", *(f"prob_{label}" for label in LABELS), "warnings"]
    assert all(row["warnings"] == "" for row in rows)  # ordinary images: nothing to warn about
    for row in rows:
        probabilities = [float(row[f"prob_{label}"]) for label in LABELS]
        assert abs(sum(probabilities) - 1) < 1e-5
        assert row["predicted"] == LABELS[int(np.argmax(probabilities))]
    expected = _reference_logits(classifier_dir, DeepLenseViTForImageClassification, good).softmax(-1)
    np.testing.assert_allclose(
        [float(rows[0][f"prob_{label}"]) for label in LABELS], expected.numpy(), rtol=1e-5
    )

    captured = capsys.readouterr()
    assert str(images / "a.npy") in captured.out and "prob_no_sub" in captured.out  # the printed table
    skipped = captured.err
    assert "skipped 7 item(s)" in skipped
    assert f"{tmp_path / 'nan.npy'}: input (shape (C, H, W) = (1, 40, 40)) has 1 NaN/inf" in skipped
    assert f"{tmp_path / 'three_channels.npy'}: input has 3 channel(s)" in skipped
    assert f"{tmp_path / 'flat.npy'}: input has shape (4097,)" in skipped
    assert f"{tmp_path / 'axion_object.npy'}: object (pickled) array" in skipped
    assert f"{tmp_path / 'corrupt.npy'}:" in skipped
    assert f"{tmp_path / 'table.csv'}: unsupported file type" in skipped
    assert f"{tmp_path / 'missing.npy'}: no such file or directory" in skipped


def test_predict_fails_only_when_nothing_was_predicted(classifier_dir, tmp_path, capsys):
    np.save(tmp_path / "nan.npy", np.full((16, 16), np.nan))
    assert main(["predict", "--model", str(classifier_dir), str(tmp_path / "nan.npy")]) == 1
    assert "nothing could be predicted" in capsys.readouterr().err


def test_predict_npz_key_and_channels_last_option(classifier_dir, tmp_path):
    rng = np.random.default_rng(1)
    image = rng.random((16, 16, 1))
    np.savez(tmp_path / "lens.npz", image=image, mass=np.array([1e-22]))
    output = tmp_path / "preds.csv"
    code = main(
        ["predict", "--model", str(classifier_dir), str(tmp_path / "lens.npz"), "--npz-key", "image"]
        + ["--input-data-format", "channels_last", "--output", str(output)]
    )
    assert code == 0
    rows = _read_csv(output)
    assert [row["file"] for row in rows] == [f"{tmp_path / 'lens.npz'}:image"]
    assert (
        main(["predict", "--model", str(classifier_dir), str(tmp_path / "lens.npz"), "--npz-key", "nope"])
        == 1
    )


def test_predict_regression_writes_targets_in_physical_units(regression_dir, tmp_path):
    image = np.random.default_rng(2).random((32, 32))
    np.save(tmp_path / "lens.npy", image)
    output = tmp_path / "preds.csv"
    assert (
        main(["predict", "--model", str(regression_dir), str(tmp_path / "lens.npy"), "--output", str(output)])
        == 0
    )
    rows = _read_csv(output)
    assert list(rows[0]) == ["file", "prediction", "warnings"]
    expected = _reference_logits(regression_dir, DeepLenseViTForRegression, image)
    np.testing.assert_allclose(float(rows[0]["prediction"]), expected.item(), rtol=1e-5)


def test_predict_bad_model_and_arguments(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.zeros((8, 8)))
    assert main(["predict", "--model", str(tmp_path / "no_model"), str(tmp_path / "a.npy")]) == 1
    assert "could not load model" in capsys.readouterr().err
    mae_dir = tmp_path / "mae"  # a pre-training checkpoint predicts nothing
    mae_config = DeepLenseMAEConfig(
        image_size=16, patch_size=4, hidden_size=12, num_hidden_layers=1, decoder_num_attention_heads=2
    )
    DeepLenseMAEForPreTraining(mae_config).save_pretrained(mae_dir)
    assert main(["predict", "--model", str(mae_dir), str(tmp_path / "a.npy")]) == 1
    assert (
        "['DeepLenseMAEForPreTraining']: predict needs a classifier or a regression model"
        in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "a.npy")])  # --model is required
    with pytest.raises(SystemExit):
        main([])  # a subcommand is required


@pytest.mark.slow
def test_entry_point_subprocess(classifier_dir, tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(3).random((16, 16)))
    executable = Path(sys.executable).parent / "hf-deeplense"
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "hf_deeplense.cli"]
    output = tmp_path / "preds.csv"
    result = subprocess.run(
        [
            *command,
            "predict",
            "--model",
            str(classifier_dir),
            str(tmp_path / "a.npy"),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(_read_csv(output)) == 1
    assert "predicted" in result.stdout


def _axion_file(path: Path, image, mass) -> None:
    """A DeepLense axion file: object array `[image, m_a]`."""
    array = np.empty(2, dtype=object)
    array[0], array[1] = image, mass
    np.save(path, array, allow_pickle=True)


def test_allow_pickle_reads_axion_files_and_a_payload_runs_only_with_the_flag(
    classifier_dir, tmp_path, capsys
):
    image = np.random.default_rng(4).random((40, 40))
    _axion_file(tmp_path / "axion_sim_0.npy", image, 1e-22)
    marker = tmp_path / "unpickled"
    np.save(tmp_path / "evil.npy", np.array([_WritesFileWhenUnpickled(str(marker)), 1e-22], dtype=object))
    inputs = [str(tmp_path / "axion_sim_0.npy"), str(tmp_path / "evil.npy")]

    # default (CLI and Python API): nothing is unpickled, both files are skipped with the reason
    output = tmp_path / "default.csv"
    assert main(["predict", "--model", str(classifier_dir), *inputs, "--output", str(output)]) == 1
    assert not marker.exists(), "predict unpickled without --allow-pickle"
    err = capsys.readouterr().err
    assert err.count("rerun with --allow-pickle") == 2 and ALLOW_PICKLE_WARNING not in err
    result = predict_files(str(classifier_dir), inputs, device="cpu")
    assert not marker.exists() and result.rows == [] and len(result.skipped) == 2

    # opt-in: the warning is printed, the axion image is predicted like the bare image
    output = tmp_path / "opt_in.csv"
    assert (
        main(["predict", "--model", str(classifier_dir), *inputs, "--allow-pickle", "--output", str(output)])
        == 0
    )
    assert marker.exists(), "the flag really unpickles: this is what it guards"
    err = capsys.readouterr().err
    assert ALLOW_PICKLE_WARNING in err and f"{tmp_path / 'evil.npy'}: object array with 2 element(s)" in err
    rows = _read_csv(output)
    assert [row["file"] for row in rows] == [inputs[0]]
    expected = _reference_logits(classifier_dir, DeepLenseViTForImageClassification, image).softmax(-1)
    np.testing.assert_allclose(
        [float(rows[0][f"prob_{label}"]) for label in LABELS], expected.numpy(), rtol=1e-5
    )
    api = predict_files(str(classifier_dir), [inputs[0]], allow_pickle=True, device="cpu")
    np.testing.assert_allclose(api.rows[0].values, expected.numpy(), rtol=1e-5)


def test_untrustworthy_inputs_are_predicted_and_flagged(classifier_dir, tmp_path, capsys):
    rng = np.random.default_rng(5)
    np.save(tmp_path / "constant.npy", np.full((40, 40), 3.0))
    np.save(tmp_path / "near_constant.npy", 1000.0 + 1e-3 * rng.random((40, 40)))
    np.save(tmp_path / "tiny.npy", rng.random((2, 2)))
    np.save(tmp_path / "good.npy", rng.random((40, 40)))
    output = tmp_path / "preds.csv"
    assert main(["predict", "--model", str(classifier_dir), str(tmp_path), "--output", str(output)]) == 0
    rows = {Path(row["file"]).name: row["warnings"] for row in _read_csv(output)}
    assert set(rows) == {"constant.npy", "near_constant.npy", "tiny.npy", "good.npy"}  # nothing dropped
    assert rows["constant.npy"].startswith("constant image (every pixel is 3)")
    assert rows["near_constant.npy"].startswith("near-constant image")
    assert rows["tiny.npy"] == "input 2x2 is much smaller than the model's 16x16 (upsampled 8.0x)"
    assert rows["good.npy"] == ""
    err = capsys.readouterr().err
    assert f"warning: {tmp_path / 'tiny.npy'}: input 2x2 is much smaller" in err  # per file, as it comes
    assert "3 of 4 prediction(s) carry warnings" in err  # and in the summary


def test_values_far_outside_the_training_range_are_flagged(tmp_path):
    torch.manual_seed(0)
    model = DeepLenseViTForImageClassification(_tiny_config(num_labels=3)).eval()
    processor = LensImageProcessor(size=16, normalization="mean_std", image_mean=0.5, image_std=0.1)
    rng = np.random.default_rng(6)
    np.save(tmp_path / "in_range.npy", rng.random((16, 16)))
    np.save(
        tmp_path / "counts.npy", 1e4 * rng.random((16, 16))
    )  # raw counts given to a model trained on [0, 1]
    result = predict_files(model, [str(tmp_path)], processor=processor, task="classification", device="cpu")
    warnings = {Path(row.name).name: row.warnings for row in result.rows}
    assert warnings["in_range.npy"] == []
    assert len(warnings["counts.npy"]) == 1 and "far outside the training range" in warnings["counts.npy"][0]
