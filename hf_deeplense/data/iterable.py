"""`SimulatedLensDataset`: an endless stream of images simulated on the fly.

The stream is a sequence of global sample numbers `n = 0, 1, 2, ...`. Sample `n` is class
`classes[n % K]` (balanced classes), image `n // K` of that class, simulated with
`simulate_batch(cfg, class_name, indices=[n // K], seed)`; for the lens-finding preset it is image
`n` of `simulate_lens_finding_batch`. An image depends only on `(cfg, seed, n)` (the simulator's
contract), never on batch size, worker or rank.

The stream is cut into chunks of `chunk_size` samples. With `R` ranks (torch.distributed or the
`RANK`/`WORLD_SIZE` variables `accelerate launch` sets) and `W` DataLoader workers, stream shard
`s = rank * W + worker` simulates chunks `s, s + R*W, s + 2*R*W, ...`: shards never produce the same
image, and a rerun with the same seed, ranks and workers reproduces every shard exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from ..simulation import (
    LENS_FINDING_CLASSES,
    SimulationConfig,
    get_preset,
    simulate_batch,
    simulate_lens_finding_batch,
)


def _distributed_rank() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed when initialised, else from the environment."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class SimulatedLensDataset(IterableDataset):
    """Images simulated on the fly, as rows `{"pixel_values", "label", <physical parameters>}`.

    Args:
        config: a `SimulationConfig` or a preset name (`get_preset(name)`).
        seed: data-set seed (use a different one than the one of a stored test set).
        chunk_size: images simulated per call to the simulator (speed; no effect on the images).
        num_samples: stop after this many samples in total over all shards (None: endless; give
            the Trainer `max_steps`).
        transform: applied to each simulated chunk `(chunk, C, H, W)` (e.g. a normalisation).
        rank, world_size: this process's rank (default: torch.distributed / `RANK`, `WORLD_SIZE`).
        device: where the simulator runs; rows are returned on the CPU.

    Rows hold `pixel_values` `(C, H, W)` float32, `label` (int; index in `config.classes`) and
    one float per simulator parameter (`log10_m_a`, `subhalo_mass_fraction`, `theta_e`, ... or the
    lens-finding meta features), so `LensingCollator(label_column=...)` can pick any of them.
    """

    def __init__(
        self,
        config: SimulationConfig | str,
        seed: int = 0,
        chunk_size: int = 64,
        num_samples: int | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        self.config = get_preset(config) if isinstance(config, str) else config
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.seed = seed
        self.chunk_size = chunk_size
        self.num_samples = num_samples
        self.transform = transform
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.class_names = list(self.config.classes)
        self.lens_finding = tuple(self.config.classes) == tuple(LENS_FINDING_CLASSES)

    def shard(self) -> tuple[int, int]:
        """(this shard's number, number of shards) for the current rank and DataLoader worker."""
        rank, world_size = _distributed_rank()
        rank = rank if self.rank is None else self.rank
        world_size = world_size if self.world_size is None else self.world_size
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        return rank * num_workers + worker_id, world_size * num_workers

    def simulate(self, sample_numbers: Tensor) -> dict[str, Tensor]:
        """Rows of the global sample numbers `sample_numbers` (1-D int64), as batched columns."""
        if self.lens_finding:
            out = simulate_lens_finding_batch(
                self.config, sample_numbers.tolist(), seed=self.seed, device=self.device
            )
            columns = {"pixel_values": out["images"], "label": out["labels"], **out["meta"]}
            return {name: value.cpu() for name, value in columns.items()}
        num_classes = len(self.class_names)
        labels = sample_numbers % num_classes
        parts, order = [], []
        for label, class_name in enumerate(self.class_names):
            selected = (labels == label).nonzero().flatten()
            if not len(selected):
                continue
            indices = (sample_numbers[selected] // num_classes).tolist()
            out = simulate_batch(self.config, class_name, indices=indices, seed=self.seed, device=self.device)
            parts.append({"pixel_values": out["images"], **out["params"]})
            order.append(selected)
        inverse = torch.argsort(torch.cat(order))  # back to the order of sample_numbers
        columns = {name: torch.cat([part[name].cpu() for part in parts])[inverse] for name in parts[0]}
        columns["label"] = labels
        return columns

    def chunks(self) -> Iterator[dict[str, Tensor]]:
        """The simulated chunks of this shard, as batched columns."""
        shard, num_shards = self.shard()
        chunk = shard
        while True:
            start = chunk * self.chunk_size
            stop = start + self.chunk_size
            if self.num_samples is not None:
                stop = min(stop, self.num_samples)
                if start >= stop:
                    return
            columns = self.simulate(torch.arange(start, stop))
            if self.transform is not None:
                columns["pixel_values"] = self.transform(columns["pixel_values"])
            yield columns
            chunk += num_shards

    def __iter__(self) -> Iterator[dict[str, Tensor | int | float]]:
        for columns in self.chunks():
            pixel_values = columns.pop("pixel_values").float()
            labels = columns.pop("label").tolist()
            params = {name: value.float().tolist() for name, value in columns.items()}
            for i, label in enumerate(labels):
                yield {
                    "pixel_values": pixel_values[i],
                    "label": label,
                    **{name: values[i] for name, values in params.items()},
                }
