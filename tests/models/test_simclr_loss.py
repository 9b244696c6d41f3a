"""NT-Xent (SimCLR) loss against a hand-written reference: an explicit loop over anchors and pairs in numpy."""

import numpy as np
import pytest
import torch

from hf_deeplense.models.simclr.loss_simclr import NTXentLoss, nt_xent_loss


def reference_nt_xent(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    """SimCLR eq. (1), written the slow way: l(i, j) = -log exp(sim_ij/T) / sum_{k != i} exp(sim_ik/T),
    averaged over both orderings of every positive pair (Chen et al. 2020, Algorithm 1)."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    n = z1.shape[0]

    def cosine(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    def pair_loss(i, j):
        denominator = 0.0
        for k in range(2 * n):
            if k != i:
                denominator += np.exp(cosine(z[i], z[k]) / temperature)
        return -np.log(np.exp(cosine(z[i], z[j]) / temperature) / denominator)

    total = 0.0
    for k in range(n):
        total += pair_loss(k, k + n) + pair_loss(k + n, k)
    return total / (2 * n)


@pytest.mark.parametrize("batch_size", [2, 3, 8])
@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_nt_xent_matches_reference(batch_size, temperature):
    rng = np.random.default_rng(batch_size * 100 + int(temperature * 100))
    z1 = rng.normal(size=(batch_size, 5)).astype(np.float32)
    z2 = rng.normal(size=(batch_size, 5)).astype(np.float32)
    expected = reference_nt_xent(z1, z2, temperature)
    got = nt_xent_loss(torch.from_numpy(z1), torch.from_numpy(z2), temperature)
    assert got.shape == ()
    np.testing.assert_allclose(got.item(), expected, rtol=1e-5)
    assert NTXentLoss(temperature)(torch.from_numpy(z1), torch.from_numpy(z2)).item() == pytest.approx(
        got.item()
    )


def test_nt_xent_is_scale_invariant_and_symmetric():
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    loss = nt_xent_loss(z1, z2, 0.5)
    torch.testing.assert_close(nt_xent_loss(3.0 * z1, 0.5 * z2, 0.5), loss)  # projections are L2-normalised
    torch.testing.assert_close(nt_xent_loss(z2, z1, 0.5), loss)  # both views play both roles


def test_nt_xent_rewards_aligned_views():
    generator = torch.Generator().manual_seed(1)
    z1 = torch.randn(6, 8, generator=generator)
    aligned = nt_xent_loss(z1, z1 + 0.01 * torch.randn(6, 8, generator=generator), 0.1)
    unrelated = nt_xent_loss(z1, torch.randn(6, 8, generator=generator), 0.1)
    assert aligned < unrelated
    # identical views of orthogonal images: positive similarity 1, the 2N - 2 negatives 0, so the closed form
    # is -log(exp(1/T) / (exp(1/T) + 2N - 2))
    eye = torch.eye(6, 8)
    expected = np.log(np.exp(1 / 0.1) + 10) - 1 / 0.1
    assert nt_xent_loss(eye, eye, 0.1).item() == pytest.approx(expected, abs=1e-6)


def test_nt_xent_gradient_flows_to_both_views():
    z1 = torch.randn(3, 4, requires_grad=True)
    z2 = torch.randn(3, 4, requires_grad=True)
    nt_xent_loss(z1, z2, 0.5).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("shape_1", "shape_2", "temperature", "message"),
    [
        ((4, 3), (4, 3), 0.0, "temperature"),
        ((4, 3), (5, 3), 0.5, "shape"),
        ((1, 3), (1, 3), 0.5, "at least 2"),
    ],
)
def test_nt_xent_rejects_bad_input(shape_1, shape_2, temperature, message):
    with pytest.raises(ValueError, match=message):
        nt_xent_loss(torch.zeros(shape_1), torch.zeros(shape_2), temperature)


def _ddp_simclr_rank(rank: int, world_size: int, init_file: str, batch: dict, result_dir: str) -> None:
    """One rank: the SimCLR loss and its gradients on this rank's half of the global batch."""
    from test_simclr import tiny_simclr_config

    from hf_deeplense.models.simclr import DeepLenseSimCLRModel

    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        torch.manual_seed(0)
        model = DeepLenseSimCLRModel(
            tiny_simclr_config("cnn")
        ).eval()  # eval: batch norm uses fixed statistics
        half = batch["pixel_values"].shape[0] // world_size
        rows = slice(rank * half, (rank + 1) * half)
        loss = model(batch["pixel_values"][rows], batch["pixel_values_2"][rows]).loss
        loss.backward()
        gradient = model.projection_head.fc2.weight.grad
        torch.save({"loss": loss.detach(), "gradient": gradient}, f"{result_dir}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_simclr_loss_under_ddp_uses_the_negatives_of_every_rank(tmp_path):
    """2 gloo processes, 3 images each: the mean of the ranks' losses (and of their gradients, what DDP applies)
    equals the loss of the 6 images in one process (with each rank's negatives only, it would not)."""
    from test_simclr import tiny_simclr_config

    from hf_deeplense.models.simclr import DeepLenseSimCLRModel

    generator = torch.Generator().manual_seed(1)
    batch = {
        name: torch.randn(6, 1, 30, 30, generator=generator) for name in ("pixel_values", "pixel_values_2")
    }
    torch.manual_seed(0)
    model = DeepLenseSimCLRModel(tiny_simclr_config("cnn")).eval()
    expected = model(**batch).loss
    expected.backward()
    torch.multiprocessing.spawn(
        _ddp_simclr_rank, args=(2, str(tmp_path / "init"), batch, str(tmp_path)), nprocs=2, join=True
    )
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    torch.testing.assert_close((ranks[0]["loss"] + ranks[1]["loss"]) / 2, expected.detach())
    torch.testing.assert_close(
        (ranks[0]["gradient"] + ranks[1]["gradient"]) / 2, model.projection_head.fc2.weight.grad
    )
