import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from hf_deeplense.data import LensingCollator, SimulatedLensDataset
from hf_deeplense.simulation import get_preset, simulate_batch


@pytest.fixture(scope="module")
def config():
    return get_preset("model_ii", image_size=12)


def images(dataset):
    return torch.stack([row["pixel_values"] for row in dataset])


def test_rows_follow_the_simulator_contract(config):
    rows = list(SimulatedLensDataset(config, seed=3, chunk_size=4, num_samples=7))
    assert [row["label"] for row in rows] == [0, 1, 2, 0, 1, 2, 0]
    for n in (0, 4, 5):  # sample n = image n // 3 of class n % 3
        expected = simulate_batch(config, config.classes[n % 3], indices=[n // 3], seed=3)
        torch.testing.assert_close(rows[n]["pixel_values"], expected["images"][0])
        assert rows[n]["theta_e"] == pytest.approx(expected["params"]["theta_e"][0].item())
    assert (
        rows[5]["log10_m_a"] < 0 and rows[4]["log10_m_a"] != rows[4]["log10_m_a"]
    )  # axion mass; NaN otherwise


def test_chunk_size_does_not_change_images_and_rerun_reproduces(config):
    first = images(SimulatedLensDataset(config, chunk_size=5, num_samples=9))
    again = images(SimulatedLensDataset(config, chunk_size=5, num_samples=9))
    other_chunks = images(SimulatedLensDataset(config, chunk_size=2, num_samples=9))
    assert torch.equal(first, again) and torch.equal(first, other_chunks)
    assert not torch.equal(first, images(SimulatedLensDataset(config, seed=1, num_samples=9)))


def test_ranks_get_disjoint_streams(config, monkeypatch):
    whole = images(SimulatedLensDataset(config, chunk_size=2, num_samples=12))
    parts = [
        images(SimulatedLensDataset(config, chunk_size=2, num_samples=12, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert len(parts[0]) == len(parts[1]) == 6
    assert torch.equal(parts[0][:2], whole[:2]) and torch.equal(parts[1][:2], whole[2:4])
    flat = torch.cat(parts).flatten(1)
    assert torch.unique(flat, dim=0).shape[0] == 12  # no image twice
    assert torch.equal(flat.sort(0).values, whole.flatten(1).sort(0).values)  # together: the whole stream
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert SimulatedLensDataset(config).shard() == (1, 3)


def test_dataloader_workers_are_disjoint_and_reproducible(config):
    dataset = SimulatedLensDataset(config, chunk_size=3, num_samples=24)
    collator = LensingCollator()

    def run():
        loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collator)
        return torch.cat([batch["pixel_values"] for batch in loader])

    first, second = run(), run()
    assert first.shape == (24, 1, 12, 12)
    assert torch.equal(first, second)
    assert torch.unique(first.flatten(1), dim=0).shape[0] == 24
    single = images(dataset)
    assert torch.equal(first.flatten(1).sort(0).values, single.flatten(1).sort(0).values)


def test_endless_stream_and_lens_finding():
    dataset = SimulatedLensDataset(get_preset("lens_finding", image_size=12), chunk_size=8)
    rows = list(itertools.islice(iter(dataset), 20))
    assert len(rows) == 20 and rows[0]["pixel_values"].shape == (3, 12, 12)
    assert {"einstein_radius", "galaxy_kind"} <= set(rows[0]) and {r["label"] for r in rows} <= {0, 1}
    assert dataset.class_names == ["non_lens", "lens"]
