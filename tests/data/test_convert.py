import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from hf_deeplense.data import LAYOUTS, LayoutError, convert_deeplense, detect_layout, load_lensing_dataset
from hf_deeplense.data import writer as writer_module

REPO = Path(__file__).resolve().parents[2]
# (classes, counts per split, image shape, has log10_m_a); missing splits are carved 25 % / 25 % per class.
EXPECTED = {
    "model_i_iii": (
        ["no_sub", "cdm", "axion"],
        {"train": 9, "validation": 3, "test": 6},
        (1, 150, 150),
        True,
    ),
    "model_iv": (["no_sub", "cdm", "axion"], {"train": 9, "validation": 6, "test": 0}, (1, 64, 64), True),
    # its val/ folder is the official test split; validation is carved out of train
    "common_test_i": (
        ["no", "sphere", "vort"],
        {"train": 6, "validation": 3, "test": 3},
        (1, 150, 150),
        False,
    ),
    "binary_substructure": (
        ["no_sub", "sub"],
        {"train": 4, "validation": 2, "test": 2},
        (1, 150, 150),
        False,
    ),
    "hsc": (["non_lens", "lens"], {"train": 4, "validation": 2, "test": 2}, (1, 64, 64), False),
    "stacked": (
        ["class_0", "class_1", "class_2"],
        {"train": 6, "validation": 3, "test": 6},
        (1, 150, 150),
        False,
    ),
    "npz": (["lens"], {"train": 6, "validation": 2, "test": 2}, (4, 91, 91), False),
    "lens_finding": (["non_lens", "lens"], {"train": 6, "validation": 2, "test": 4}, (3, 64, 64), False),
    "real_lens_ssl": (["non_lens", "lens"], {"train": 6, "validation": 2, "test": 2}, (3, 32, 32), False),
    "regression": (["axion"], {"train": 6, "validation": 2, "test": 2}, (1, 150, 150), True),
    "flat_array": (
        ["class_0", "class_1", "class_2"],
        {"train": 6, "validation": 3, "test": 3},
        (1, 64, 64),
        False,
    ),
}


def source_image(src: Path, source_file: str) -> np.ndarray:
    """The image a converted row came from, read independently of the converter."""
    if source_file.endswith("]"):  # a row of an array file: name.npy[row] / name.npz[row]
        name, row = source_file[:-1].split("[")
        if name.endswith(".npz"):
            return np.load(src / name)["data"][int(row)]
        values = np.load(src / name)[int(row)]
        return values if values.ndim == 3 else values[:-1].reshape(1, 64, 64)  # stacked, or flat + label
    if source_file.endswith(".png"):
        from PIL import Image

        return np.asarray(Image.open(src / source_file), dtype=np.float32)[None]
    path = src / source_file if (src / source_file).exists() else src.parent / source_file
    array = np.load(path, allow_pickle=True)
    if array.dtype == object:
        array = array[0]
    if array.ndim == 1:  # flat array file: 4096 pixels + label
        return array[:-1].reshape(1, 64, 64)
    if array.ndim == 2:
        return array[None]
    return np.moveaxis(array, -1, 0) if array.shape[-1] == 3 else array


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_converts(layout, tmp_path, build_layout):
    src = build_layout(layout, tmp_path / "src")
    assert detect_layout(src) == layout
    classes, counts, shape, has_mass = EXPECTED[layout]
    test_frac = 0 if layout == "model_iv" else 0.25
    result = convert_deeplense(
        src, tmp_path / "out", allow_pickle=True, val_frac=0.25, test_frac=test_frac, progress=False
    )
    assert result.skipped == [] and result.layout == layout

    dataset = load_lensing_dataset(tmp_path / "out")
    assert {split: ds.num_rows for split, ds in dataset.items()} == {s: n for s, n in counts.items() if n}
    train = dataset["train"]
    assert train.features["label"].names == classes
    assert train.features["pixel_values"].shape == shape
    assert ("log10_m_a" in train.features) == has_mass
    for split in dataset:
        rows = dataset[split].with_format("numpy")[:]
        for image, source in zip(rows["pixel_values"], rows["source_file"]):
            np.testing.assert_allclose(image, source_image(src, source), rtol=1e-6)
    if layout in ("model_i_iii", "model_iv", "regression"):  # their axion files are [image, mass] objects
        rows = train.with_format("numpy")[:]
        axion = rows["label"] == classes.index("axion")
        assert np.all(np.isnan(rows["log10_m_a"][~axion]))
        assert np.all((rows["log10_m_a"][axion] > -24) & (rows["log10_m_a"][axion] < -22))
        source = rows["source_file"][axion][0]
        expected_mass = np.load(src / source, allow_pickle=True)[1]
        assert rows["log10_m_a"][axion][0] == pytest.approx(np.log10(expected_mass), abs=1e-5)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Conversion parameters" in card and "skipped 0 files" in card
    assert not (tmp_path / "out" / ".convert_state").exists()


def test_labels_follow_class_folders(tmp_path, build_layout):
    src = build_layout("model_i_iii", tmp_path / "src")
    convert_deeplense(src, tmp_path / "out", allow_pickle=True, progress=False)
    dataset = load_lensing_dataset(tmp_path / "out")
    names = dataset["train"].features["label"].names
    for split in dataset:
        for row in dataset[split].select_columns(["label", "source_file"]):
            assert row["source_file"].split("/")[1] == names[row["label"]]
    assert {row["source_file"].split("/")[0] for row in dataset["test"]} == {"Model_I_test"}


def test_object_arrays_need_allow_pickle(tmp_path, build_layout):
    src = build_layout("model_i_iii", tmp_path / "src")
    result = convert_deeplense(src, tmp_path / "out", progress=False)
    assert len(result.skipped) == 6  # 4 train + 2 test axion files
    assert all("axion" in path and "--allow-pickle" in reason for path, reason in result.skipped)
    assert result.counts["test"] == {"no_sub": 2, "cdm": 2, "axion": 0}
    assert "--allow-pickle" in (tmp_path / "out" / "README.md").read_text()


def test_pickle_payload_does_not_run_without_the_flag(tmp_path, build_layout, save_object_array):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    src = build_layout("model_i_iii", tmp_path / "src")
    save_object_array(src / "Model_I" / "axion" / "evil.npy", np.zeros((150, 150)), Payload())
    result = convert_deeplense(src, tmp_path / "out", progress=False)
    assert not marker.exists()
    assert any(
        path == "Model_I/axion/evil.npy" and "--allow-pickle" in reason for path, reason in result.skipped
    )

    result = convert_deeplense(src, tmp_path / "out2", allow_pickle=True, progress=False)
    assert marker.exists()  # the opt-in really unpickles: this is what the flag guards
    assert sum(counts["axion"] for counts in result.counts.values()) == 6  # the real axion files load
    assert [path for path, _ in result.skipped] == ["Model_I/axion/evil.npy"]  # its "mass" is a file object


def test_bad_files_are_reported_and_skipped(tmp_path, build_layout):
    src = build_layout("common_test_i", tmp_path / "src")
    folder = src / "dataset" / "train" / "no"
    good = np.random.default_rng(1).random((1, 150, 150))
    np.save(folder / "nan.npy", np.where(np.arange(150)[None, None, :] == 7, np.nan, good))
    np.save(folder / "inf.npy", np.full((1, 150, 150), np.inf))
    np.save(folder / "wrong_shape.npy", np.zeros((5, 5, 5, 5)))
    np.save(folder / "small.npy", np.zeros((1, 64, 64)))
    np.save(folder / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(folder / "overflow.npy", np.full((1, 150, 150), 1e300))
    np.save(folder / "truncated.npy", good)
    data = (folder / "truncated.npy").read_bytes()
    (folder / "truncated.npy").write_bytes(data[: len(data) // 2])
    (folder / "garbage.npy").write_bytes(b"not a numpy file at all")
    (folder / "empty.npy").write_bytes(b"")
    (folder / "notes.txt").write_text("hello")

    result = convert_deeplense(src, tmp_path / "out", test_frac=0, progress=False)
    reasons = {Path(path).name: reason for path, reason in result.skipped}
    assert set(reasons) == {
        "nan.npy", "inf.npy", "wrong_shape.npy", "small.npy", "strings.npy", "overflow.npy",
        "truncated.npy", "garbage.npy", "empty.npy", "notes.txt",
    }  # fmt: skip
    assert "NaN" in reasons["nan.npy"] and "inf" in reasons["inf.npy"] and "inf" in reasons["overflow.npy"]
    assert "differs" in reasons["small.npy"] and "not (H, W)" in reasons["wrong_shape.npy"]
    assert "dtype" in reasons["strings.npy"] and "unreadable" in reasons["truncated.npy"]
    assert "not a .npy" in reasons["notes.txt"]
    assert result.counts["train"] == {"no": 3, "sphere": 3, "vort": 3}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "skipped 10 file(s)" in card and "dataset/train/no/nan.npy" in card


def test_split_is_seeded_and_stratified(tmp_path, build_layout):
    src = build_layout("real_lens_ssl", tmp_path / "src")
    for i in range(5, 30):
        np.save(src / "nonlenses" / f"{i}.npy", np.ones((3, 32, 32), np.float32) * i)
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        convert_deeplense(src, tmp_path / name, seed=seed, val_frac=0.2, test_frac=0.2, progress=False)
        dataset = load_lensing_dataset(tmp_path / name)
        runs[name] = {split: list(ds["source_file"]) for split, ds in dataset.items()}
        counts = {split: np.bincount(ds["label"], minlength=2).tolist() for split, ds in dataset.items()}
        assert counts == {"train": [18, 3], "validation": [6, 1], "test": [6, 1]}
    assert runs["a"] == runs["b"]
    assert set(runs["a"]["validation"]) != set(runs["c"]["validation"])


def test_empty_and_unknown_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="empty folder"):
        convert_deeplense(tmp_path / "empty", tmp_path / "out")
    for name in ("cats", "dogs"):
        (tmp_path / "pets" / name).mkdir(parents=True)
    with pytest.raises(LayoutError) as error:
        detect_layout(tmp_path / "pets")
    message = str(error.value)
    assert "cats/" in message and "dogs/" in message
    assert all(name in message for name in LAYOUTS)
    for name in ("no_sub", "cdm"):
        (tmp_path / "Model_II" / name).mkdir(parents=True)
    with pytest.raises(ValueError, match="no .npy files"):
        convert_deeplense(tmp_path / "Model_II", tmp_path / "out")
    (tmp_path / "Model_II" / "extra").mkdir()
    with pytest.raises(LayoutError, match="unknown class folders \\['extra'\\]"):
        convert_deeplense(tmp_path / "Model_II", tmp_path / "out")


def test_wrong_layout_name_is_a_clear_error(tmp_path, build_layout):
    src = build_layout("lens_finding", tmp_path / "src")
    with pytest.raises(LayoutError, match="lenses/ and nonlenses/"):
        convert_deeplense(src, tmp_path / "out", layout="real_lens_ssl")


def test_interrupted_conversion_resumes(tmp_path, build_layout, monkeypatch):
    src = build_layout("lens_finding", tmp_path / "src")
    convert_deeplense(src, tmp_path / "clean", examples_per_shard=2, progress=False)
    real_write_shard = writer_module.write_shard
    written = []

    def crash_on_third(path, rows, features):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(path.name)
        return real_write_shard(path, rows, features)

    monkeypatch.setattr(writer_module, "write_shard", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        convert_deeplense(src, tmp_path / "out", examples_per_shard=2, progress=False)
    assert not (tmp_path / "out" / "README.md").exists()
    counting = []
    monkeypatch.setattr(
        writer_module, "write_shard", lambda p, r, f: counting.append(p.name) or real_write_shard(p, r, f)
    )
    convert_deeplense(src, tmp_path / "out", examples_per_shard=2, progress=False)
    assert len(counting) == len(list((tmp_path / "clean" / "data").iterdir())) - 2
    for path in (tmp_path / "clean" / "data").iterdir():
        assert (tmp_path / "out" / "data" / path.name).read_bytes() == path.read_bytes()
    assert (tmp_path / "out" / "README.md").read_text() == (tmp_path / "clean" / "README.md").read_text()


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "dataset_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_script(tmp_path, build_layout, capsys):
    script = load_script("convert_deeplense")
    src = build_layout("regression", tmp_path / "src")
    assert script.main([str(src), "--out", str(tmp_path / "out"), "--seed", "3"]) == 2
    assert "--allow-pickle" in capsys.readouterr().err
    assert script.main([str(src), "--out", str(tmp_path / "out"), "--allow-pickle", "--val-frac", "0.2"]) == 0
    assert "layout regression" in capsys.readouterr().out
    assert load_lensing_dataset(tmp_path / "out")["validation"].num_rows == 2
    (tmp_path / "odd" / "stuff").mkdir(parents=True)
    assert script.main([str(tmp_path / "odd"), "--out", str(tmp_path / "out3")]) == 2
    assert "Known layouts" in capsys.readouterr().err


# -- whole folders as one split, official splits ------------------------------------------------------------


def test_an_official_test_folder_converts_as_a_test_split(tmp_path, build_layout):
    src = build_layout("model_i_iii", tmp_path / "src")
    test_folder = src / "Model_I_test"
    result = convert_deeplense(test_folder, tmp_path / "by_name", allow_pickle=True, progress=False)
    assert list(result.counts) == ["test"]  # Model_X_test/ alone: its name says test
    assert result.counts["test"] == {"no_sub": 2, "cdm": 2, "axion": 2}

    result = convert_deeplense(
        src / "Model_I", tmp_path / "split", allow_pickle=True, split="test", progress=False
    )
    assert list(result.counts) == ["test"] and sum(result.counts["test"].values()) == 18  # + Model_I_test/

    # fractions may reach 1.0: the whole training pool becomes val + test
    shutil.rmtree(test_folder)
    result = convert_deeplense(
        src / "Model_I",
        tmp_path / "fractions",
        allow_pickle=True,
        val_frac=0.0,
        test_frac=1.0,
        progress=False,
    )
    assert list(result.counts) == ["test"] and sum(result.counts["test"].values()) == 12
    result = convert_deeplense(
        src / "Model_I", tmp_path / "halves", allow_pickle=True, val_frac=0.5, test_frac=0.5, progress=False
    )
    assert set(result.counts) == {"validation", "test"}  # no image left over for train
    assert sum(sum(c.values()) for c in result.counts.values()) == 12
    with pytest.raises(ValueError, match="at most 1"):
        convert_deeplense(src / "Model_I", tmp_path / "bad", val_frac=0.6, test_frac=0.5, progress=False)
    with pytest.raises(ValueError, match="split must be one of"):
        convert_deeplense(src / "Model_I", tmp_path / "bad", split="holdout", progress=False)


def test_common_test_i_val_folder_is_the_test_split_unless_told_otherwise(tmp_path, build_layout):
    src = build_layout("common_test_i", tmp_path / "src")
    val_files = {f"dataset/val/{c}/0.npy" for c in ("no", "sphere", "vort")}
    convert_deeplense(src, tmp_path / "default", progress=False)
    dataset = load_lensing_dataset(tmp_path / "default")
    assert set(dataset["test"]["source_file"]) == val_files  # what GSoC results report on
    assert all(name.startswith("dataset/train/") for name in dataset["train"]["source_file"])

    convert_deeplense(src, tmp_path / "told", val_folder_split="validation", test_frac=0, progress=False)
    dataset = load_lensing_dataset(tmp_path / "told")
    assert set(dataset["validation"]["source_file"]) == val_files and "test" not in dataset


def test_older_model_iv_variant_channels_last_and_no_folder(tmp_path, build_layout):
    src = build_layout("model_iv_channels_last", tmp_path / "src")
    assert detect_layout(src) == "model_iv"
    result = convert_deeplense(src, tmp_path / "out", test_frac=0, progress=False)
    assert result.class_names == ["no_sub", "cdm", "axion"] and result.image_shape == (3, 64, 64)
    dataset = load_lensing_dataset(tmp_path / "out")
    rows = dataset["train"].with_format("numpy")[:]
    no_sub = rows["label"] == 0
    assert all(name.startswith("train/no/") for name in rows["source_file"][no_sub])
    for image, source in zip(rows["pixel_values"], rows["source_file"]):
        np.testing.assert_allclose(image, np.moveaxis(np.load(src / source), -1, 0))


def test_binary_substructure_reads_npy_files_too(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("no_sub", "sub"):
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(3):
            np.save(tmp_path / "src" / name / f"{i}.npy", rng.random((150, 150)))
    (tmp_path / "src" / "sub" / "broken.png").write_bytes(b"not a png")
    result = convert_deeplense(tmp_path / "src", tmp_path / "out", test_frac=0, val_frac=0, progress=False)
    assert result.counts == {"train": {"no_sub": 3, "sub": 3}}
    assert [(path, reason.split(":")[0]) for path, reason in result.skipped] == [
        ("sub/broken.png", "unreadable image file")
    ]


# -- stacked arrays and .npz --------------------------------------------------------------------------------


def test_stacked_regression_labels_become_a_target_column(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "src").mkdir()
    images = rng.random((6, 1, 150, 150)).astype(np.float32)
    masses = rng.uniform(-24, -22, (6, 1))
    np.save(tmp_path / "src" / "images.npy", images)
    np.save(tmp_path / "src" / "labels.npy", masses)
    assert detect_layout(tmp_path / "src") == "stacked"
    result = convert_deeplense(tmp_path / "src", tmp_path / "out", val_frac=0, test_frac=0, progress=False)
    assert result.counts == {"train": {"lens": 6}}
    rows = load_lensing_dataset(tmp_path / "out")["train"].with_format("numpy")[:]
    order = [int(name.split("[")[1][:-1]) for name in rows["source_file"]]
    np.testing.assert_allclose(rows["target"], masses[order, 0], rtol=1e-6)
    np.testing.assert_array_equal(rows["pixel_values"], images[order])


def test_stacked_and_npz_errors_name_the_file_and_the_field(tmp_path, build_layout):
    src = build_layout("stacked", tmp_path / "stacked")
    np.save(src / "f_test_labels.npy", np.zeros((5, 1)))  # 6 images
    with pytest.raises(
        LayoutError, match=r"f_test_labels\.npy: 5 labels for the 6 images of f_test_data\.npy"
    ):
        convert_deeplense(src, tmp_path / "out", progress=False)

    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "cache.npz", data=np.zeros((4, 4, 91, 91)), targets=np.zeros((3, 4)))
    with pytest.raises(LayoutError, match=r"cache\.npz: 'targets' has 3 rows but 'data' has 4"):
        convert_deeplense(tmp_path / "npz" / "cache.npz", tmp_path / "out", progress=False)
    np.savez(tmp_path / "npz" / "cache.npz", images=np.zeros((4, 4, 91, 91)))
    with pytest.raises(LayoutError, match=r"cache\.npz: no 'data' array \(arrays: images\)"):
        convert_deeplense(tmp_path / "npz" / "cache.npz", tmp_path / "out", progress=False)


def test_npz_targets_and_redshifts_are_kept_per_row(tmp_path, build_layout):
    src = build_layout("npz", tmp_path / "src")
    npz = src / "dataset_4task_log10_10samples.npz"
    assert detect_layout(npz) == "npz"  # the file itself, or the folder holding it
    convert_deeplense(npz, tmp_path / "out", val_frac=0, test_frac=0, progress=False)
    rows = load_lensing_dataset(tmp_path / "out")["train"].with_format("numpy")[:]
    archive = np.load(npz)
    order = [int(name.split("[")[1][:-1]) for name in rows["source_file"]]
    for i in range(4):
        np.testing.assert_allclose(rows[f"target_{i}"], archive["targets"][order, i], rtol=1e-6)
    for i in range(2):
        np.testing.assert_allclose(rows[f"redshift_{i}"], archive["redshifts"][order, i], rtol=1e-6)
    np.testing.assert_array_equal(rows["pixel_values"], archive["data"][order])


# -- the real-lens SSL published splits (pickles) ------------------------------------------------------------


def _write_split_files(folder: Path, lenses: list[str], nonlenses: list[str]) -> None:
    """indices.pkl and train_indices_300.pkl in the shapes the DeepLense SSL repository publishes:
    numpy string scalars in lists for train, numpy string arrays for val, plain strings for test."""
    import pickle

    folder.mkdir(parents=True, exist_ok=True)
    indices = {
        "train": {
            "lenses": [np.str_(n) for n in lenses[:3]],
            "nonlenses": [np.str_(n) for n in nonlenses[:3]],
        },
        "val": {"lenses": np.array(lenses[3:4]), "nonlenses": np.array(nonlenses[3:4])},
        "test": {"lenses": list(lenses[4:]), "nonlenses": list(nonlenses[4:])},
    }
    (folder / "indices.pkl").write_bytes(pickle.dumps(indices, protocol=4))
    subset = {"lenses": np.array(lenses[:1]), "nonlenses": np.array(nonlenses[:2])}
    (folder / "train_indices_300.pkl").write_bytes(pickle.dumps(subset, protocol=4))


def test_real_lens_published_splits_are_kept_with_the_opt_in(tmp_path, build_layout):
    src = build_layout("real_lens_ssl", tmp_path / "src")  # 5 lenses, 5 non-lenses: 0.npy .. 4.npy
    names = [f"{i}.npy" for i in range(5)]
    _write_split_files(tmp_path / "input", names, names)

    result = convert_deeplense(
        src,
        tmp_path / "out",
        allow_pickle=True,
        split_file=tmp_path / "input" / "indices.pkl",
        progress=False,
    )
    assert result.skipped == []
    dataset = load_lensing_dataset(tmp_path / "out")
    files = {split: sorted(ds["source_file"]) for split, ds in dataset.items()}
    assert files == {
        "train": sorted(f"{kind}/{n}" for kind in ("lenses", "nonlenses") for n in names[:3]),
        "validation": ["lenses/3.npy", "nonlenses/3.npy"],
        "test": ["lenses/4.npy", "nonlenses/4.npy"],
    }
    train = dataset["train"]
    labelled = sorted(name for name, flag in zip(train["source_file"], train["labelled_300"]) if flag)
    assert labelled == ["lenses/0.npy", "nonlenses/0.npy", "nonlenses/1.npy"]
    assert "labelled_300" in (tmp_path / "out" / "README.md").read_text()

    # without the opt-in: the split files are named as skipped and the splits are carved instead
    result = convert_deeplense(
        src, tmp_path / "default", split_file=tmp_path / "input" / "indices.pkl", progress=False
    )
    reasons = dict(result.skipped)
    assert "--allow-pickle" in reasons["input/indices.pkl"]
    assert "input/train_indices_300.pkl" in reasons
    assert "labelled_300" not in load_lensing_dataset(tmp_path / "default")["train"].features


def test_a_planted_split_file_never_runs_even_with_the_opt_in(tmp_path, build_layout):
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    src = build_layout("real_lens_ssl", tmp_path / "src")
    (src / "indices.pkl").write_bytes(pickle.dumps({"train": Payload()}))
    result = convert_deeplense(src, tmp_path / "out", progress=False)  # found in SRC, not read
    assert not marker.exists() and "--allow-pickle" in dict(result.skipped)["indices.pkl"]
    result = convert_deeplense(src, tmp_path / "out2", allow_pickle=True, progress=False)
    assert not marker.exists(), "the split-file unpickler ran a payload"
    assert "refused global io.open" in dict(result.skipped)["indices.pkl"]


def test_convert_script_split_options(tmp_path, build_layout, capsys):
    script = load_script("convert_deeplense")
    src = build_layout("model_i_iii", tmp_path / "src")
    code = script.main(
        [str(src / "Model_I"), "--out", str(tmp_path / "out"), "--split", "test", "--allow-pickle"]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "--allow-pickle: object arrays will be unpickled" in captured.err
    assert load_lensing_dataset(tmp_path / "out")["test"].num_rows == 18  # with the sibling Model_I_test/
    src = build_layout("common_test_i", tmp_path / "cti")
    assert (
        script.main([str(src), "--out", str(tmp_path / "cti_out"), "--val-folder-split", "validation"]) == 0
    )
    assert "test: 3" not in capsys.readouterr().out  # val/ went to validation, 10 % test of 9 rounds to 0
