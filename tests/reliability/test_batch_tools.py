"""Batch tools (the converter and `hf-deeplense predict`): every bad file is skipped and named, every good one
is converted/predicted, and no pickle payload ever runs without --allow-pickle."""

from __future__ import annotations

import csv
import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_deeplense.cli import main as cli_main
from hf_deeplense.data import convert_deeplense
from hf_deeplense.image_processing_lens import LensImageProcessor
from hf_deeplense.models.vit import DeepLenseViTConfig, DeepLenseViTForImageClassification

REPO = Path(__file__).resolve().parents[2]
SHAPE = (3, 8, 8)
BAD_KINDS = ["nan", "inf", "truncated", "garbage", "empty_file", "wrong_size", "strings", "payload", "text"]


class Payload:
    """Unpickling this writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_file(folder: Path, name: str, kind: str, rng, marker: Path) -> Path:
    """One file of `kind` ("good" or a BAD_KINDS entry); returns its path."""
    image = rng.random(SHAPE, dtype=np.float32)
    path = folder / f"{name}.{'txt' if kind == 'text' else 'npy'}"
    if kind == "good":
        np.save(path, image)
    elif kind in ("nan", "inf"):
        image[1, 2, 3] = np.nan if kind == "nan" else -np.inf
        np.save(path, image)
    elif kind == "truncated":
        np.save(path, image)
        path.write_bytes(path.read_bytes()[:-40])  # a valid header, a cut body
    elif kind == "garbage":
        path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    elif kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "wrong_size":
        np.save(path, rng.random((3, 9, 9), dtype=np.float32))
    elif kind == "strings":
        np.save(path, np.full(SHAPE, "x"))
    elif kind == "payload":
        array = np.empty(2, dtype=object)
        array[0], array[1] = Payload(marker), 1e-22
        np.save(path, array, allow_pickle=True)
    elif kind == "text":
        path.write_text("not an image")
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {
            folder: st.lists(st.sampled_from(BAD_KINDS), max_size=4).filter(
                lambda kinds: kinds.count("wrong_size") <= 1
            )
            for folder in ("lenses", "nonlenses")
        }
    ),
    st.integers(0, 2**32 - 1),
)
def test_converter_skips_exactly_the_bad_files(bad_kinds, seed):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        src, marker = Path(tmp) / "src", Path(tmp) / "pwned"
        good, bad = {}, set()
        for folder, kinds in bad_kinds.items():
            (src / folder).mkdir(parents=True)
            good[folder] = 2
            for i in range(2):
                write_file(src / folder, f"good_{i}", "good", rng, marker)
            for i, kind in enumerate(kinds):
                path = write_file(src / folder, f"bad_{i}_{kind}", kind, rng, marker)
                bad.add(f"{folder}/{path.name}")
        result = convert_deeplense(src, Path(tmp) / "out", val_frac=0, test_frac=0, progress=False)
        assert not marker.exists(), "a pickle payload ran"
        assert {path for path, _ in result.skipped} == bad
        assert all(reason for _, reason in result.skipped)
        assert result.image_shape == SHAPE
        assert result.counts["train"] == {"non_lens": good["nonlenses"], "lens": good["lenses"]}


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(
        f"_reliability_{name}", REPO / "dataset_scripts" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_script_runs_no_payload_without_allow_pickle(tmp_path, capsys):
    marker = tmp_path / "pwned"
    rng = np.random.default_rng(0)
    for folder in ("lenses", "nonlenses"):
        (tmp_path / "src" / folder).mkdir(parents=True)
        for i in range(3):
            write_file(tmp_path / "src" / folder, f"good_{i}", "good", rng, marker)
    write_file(tmp_path / "src" / "lenses", "evil", "payload", rng, marker)
    script = load_script("convert_deeplense")
    assert script.main([str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--val-frac", "0"]) == 0
    assert not marker.exists()
    captured = capsys.readouterr()
    assert "lenses/evil.npy" in captured.out + captured.err
    # control: with the flag the converter unpickles, so the payload runs (the guard above is real)
    script.main([str(tmp_path / "src"), "--out", str(tmp_path / "out2"), "--val-frac", "0", "--allow-pickle"])
    assert marker.exists()


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    config = DeepLenseViTConfig(
        image_size=16,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_channels=3,
        num_labels=3,
    )
    path = tmp_path_factory.mktemp("classifier")
    DeepLenseViTForImageClassification(config).save_pretrained(path)
    LensImageProcessor(num_channels=3, size=16).save_pretrained(path)
    return path


def test_predict_skips_each_bad_file_and_predicts_the_rest(classifier_dir, tmp_path, capsys):
    rng = np.random.default_rng(0)
    marker = tmp_path / "pwned"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    good = [
        write_file(inputs, "good", "good", rng, marker),
        write_file(inputs, "wrong_size", "wrong_size", rng, marker),
    ]
    bad = [
        write_file(inputs, kind, kind, rng, marker)
        for kind in BAD_KINDS
        if kind not in ("wrong_size", "text")
    ]
    np.savez(
        inputs / "archive.npz", image=rng.random((3, 20, 20)), evil=np.array([Payload(marker)], dtype=object)
    )
    output = tmp_path / "predictions.csv"
    paths = [str(path) for path in (*good, *bad, inputs / "archive.npz")]
    assert cli_main(["predict", "--model", str(classifier_dir), *paths, "--output", str(output)]) == 0
    assert not marker.exists(), "predict unpickled a file"
    with output.open() as handle:
        predicted = [row["file"] for row in csv.DictReader(handle)]
    # images of any size are resized: a size differing from the others is not an error for predict
    assert sorted(predicted) == sorted([str(path) for path in good] + [f"{inputs / 'archive.npz'}:image"])
    err = capsys.readouterr().err
    assert f"skipped {len(bad) + 1} item(s)" in err
    for path in [*bad, f"{inputs / 'archive.npz'}:evil"]:
        assert f"{path}:" in err, path


def test_predict_on_nothing_readable_exits_nonzero(classifier_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli_main(["predict", "--model", str(classifier_dir), str(tmp_path / "empty")]) == 1
    assert "nothing could be predicted" in capsys.readouterr().err


def test_predict_on_an_empty_folder_names_it(classifier_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    cli_main(["predict", "--model", str(classifier_dir), str(tmp_path / "empty")])
    assert str(tmp_path / "empty") in capsys.readouterr().err
