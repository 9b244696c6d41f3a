"""build_simulated_dataset / dataset_scripts/build_sim.py: format, determinism, resume after SIGKILL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from hf_deeplense.data import load_lensing_dataset
from hf_deeplense.data.build import build_simulated_dataset, split_counts

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "dataset_scripts" / "build_sim.py"


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def test_split_counts():
    assert split_counts(1000, (0.8, 0.1, 0.1)) == {"train": 800, "validation": 100, "test": 100}
    assert split_counts(7, (0.5, 0.5, 0.0)) == {"train": 4, "validation": 3, "test": 0}
    with pytest.raises(ValueError, match="sum to 1"):
        split_counts(10, (0.8, 0.3, 0.1))


def test_build_writes_the_format_and_is_byte_identical(tmp_path):
    kwargs = dict(
        preset="model_ii", n_per_class=20, seed=3, image_size=16, shard_size=12, batch_size=7, progress=False
    )
    first = build_simulated_dataset(tmp_path / "a", **kwargs)
    second = build_simulated_dataset(tmp_path / "b", write_card=False, **kwargs)
    assert shard_bytes(first) == shard_bytes(second)
    assert sorted(shard_bytes(first)) == [
        "test-00000-of-00001.parquet",
        *[f"train-0000{i}-of-00004.parquet" for i in range(4)],
        "validation-00000-of-00001.parquet",
    ]
    dataset = load_lensing_dataset(first)
    assert {split: dataset[split].num_rows for split in dataset} == {"train": 48, "validation": 6, "test": 6}
    features = dataset["train"].features
    assert features["label"].names == ["no_sub", "cdm", "axion"]
    assert features["pixel_values"].shape == (1, 16, 16) and features["pixel_values"].dtype == "float32"
    train = dataset["train"].with_format("numpy")[:]
    assert np.bincount(train["label"]).tolist() == [16, 16, 16]
    axion = train["label"] == 2
    assert np.isfinite(train["log10_m_a"][axion]).all() and np.isnan(train["log10_m_a"][~axion]).all()
    assert (train["subhalo_mass_fraction"][train["label"] == 1] > 0).all()
    card = (first / "README.md").read_text()
    assert "Radial-profile baseline" in card and "macro_auc" in card and "sample_grid.png" in card
    assert '"seed": 3' in card and (first / "sample_grid.png").stat().st_size > 1000
    other_seed = build_simulated_dataset(tmp_path / "c", write_card=False, **{**kwargs, "seed": 4})
    assert shard_bytes(other_seed) != shard_bytes(first)


def test_lens_finding_build(tmp_path):
    folder = build_simulated_dataset(
        tmp_path / "lf",
        preset="lens_finding",
        n_per_class=15,
        image_size=16,
        lens_fraction=0.5,
        shard_size=100,
        progress=False,
    )
    dataset = load_lensing_dataset(folder)
    train = dataset["train"].with_format("numpy")[:]
    assert train["pixel_values"].shape == (24, 3, 16, 16)
    assert dataset["train"].features["label"].names == ["non_lens", "lens"]
    lens = train["label"] == 1
    assert 0 < lens.sum() < 24
    # at 16 px (2.7") some images of wide lenses fall outside the cut-out: n_images counts those inside
    assert (train["n_images"][lens] >= 0).all() and (train["n_images"][~lens] == 0).all()
    assert (
        np.isfinite(train["einstein_radius"][lens]).all() and np.isnan(train["einstein_radius"][~lens]).all()
    )


@pytest.mark.slow
def test_killed_build_resumes_to_the_same_bytes(tmp_path):
    """SIGKILL the script once its first shard exists; every shard visible then is a complete Parquet
    file; resuming finishes the build with exactly the bytes of an uninterrupted build."""
    options = dict(preset="model_ii", n_per_class=30, shard_size=2, seed=1, write_card=False, progress=False)
    args = ["--preset", "model_ii", "--n-per-class", "30", "--shard-size", "2", "--seed", "1", "--no-card"]
    killed_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args, "--out", str(killed_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, shards = time.monotonic() + 240, []
        while time.monotonic() < deadline and process.poll() is None:
            if (killed_dir / "data").exists():
                shards = list((killed_dir / "data").glob("*.parquet"))
                if shards:
                    break
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert shards, "the build wrote no shard in time"
    visible = sorted((killed_dir / "data").glob("*.parquet"))
    total = 36 + 5 + 5  # 72 train, 9 validation and 9 test images in shards of at most 2
    assert 1 <= len(visible) < total, f"not killed mid-build ({len(visible)} of {total} shards)"
    for path in visible:  # complete files only: the footer and every row read back
        assert pq.read_table(path).num_rows in (1, 2)
    build_simulated_dataset(killed_dir, **options)  # resume
    clean = build_simulated_dataset(tmp_path / "clean", **options)
    assert len(shard_bytes(clean)) == total
    assert shard_bytes(killed_dir) == shard_bytes(clean)
    assert not [p for p in (killed_dir / "data").iterdir() if p.name.startswith(".")]  # no temporaries left


def test_push_to_hub_publishes_the_folder(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "hf_deeplense.data.hub.publish_dataset", lambda folder, repo_id: calls.append((folder, repo_id))
    )
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import build_sim
    finally:
        sys.path.remove(str(SCRIPT.parent))
    build_sim.main(
        [
            "--preset",
            "model_iii",
            "--n-per-class",
            "4",
            "--image-size",
            "12",
            "--out",
            str(tmp_path / "p"),
            "--push-to-hub",
            "org/sim",
            "--no-card",
        ]
    )
    assert calls == [(tmp_path / "p", "org/sim")]


def test_image_size_override_keeps_the_field_of_view_and_card_names_the_preset_family(tmp_path):
    out = build_simulated_dataset(
        tmp_path / "m1", preset="model_i", n_per_class=3, image_size=16, seed=0, progress=False
    )
    card = (out / "README.md").read_text()
    # Model I: 150 px of 0.05" (7.5"); at 16 px each pixel covers 7.5" / 16
    assert f'"pixel_scale": {7.5 / 16}' in card
    assert "physical preset" in card and "`deeplense_model_i`" in card
    replica = build_simulated_dataset(
        tmp_path / "r2", preset="deeplense_model_ii", n_per_class=3, image_size=16, seed=0, progress=False
    )
    card = (replica / "README.md").read_text()
    assert "DeepLense-compatible replica" in card and "`model_ii`" in card


def test_build_sim_script_passes_json_overrides(tmp_path, monkeypatch):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "dataset_scripts" / "build_sim.py"
    spec = importlib.util.spec_from_file_location("build_sim", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    calls = []
    monkeypatch.setattr(
        script, "build_simulated_dataset", lambda *args, **kwargs: calls.append(kwargs) or tmp_path
    )
    script.main(["--out", str(tmp_path), "--overrides", '{"psf_fwhm": [0.5], "exposure_time": [100.0]}'])
    assert calls[0]["overrides"] == {"psf_fwhm": [0.5], "exposure_time": [100.0]}
    script.main(["--out", str(tmp_path)])
    assert calls[1]["overrides"] is None


def test_a_build_without_test_split_writes_its_card(tmp_path):
    """An unlabelled pre-training pool (no test split): the card says the radial baseline was not computed."""
    out = build_simulated_dataset(
        tmp_path / "pool",
        preset="model_ii",
        n_per_class=4,
        split_fractions=(0.75, 0.25, 0.0),
        image_size=16,
        progress=False,
    )
    card = (out / "README.md").read_text()
    assert "Not computed: the train or test split is empty" in card
    assert not list((out / "data").glob("test-*"))
