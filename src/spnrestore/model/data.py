"""Torch access to the training-pair shards: a memory-mapped Dataset and resumable batch samplers.

``ShardDataset[indices]`` takes a list of example indices and returns a whole
batch (a dict of tensors), reading each shard's rows straight from the
memory-mapped ``.npy`` files (the fingerprint terms are computed from the patches
and the memory-mapped fingerprints, :func:`spnrestore.dataset.shard_reader.read_rows`);
pass it to ``DataLoader(batch_size=None, sampler=...)``. The order of training batches is a pure function of (seed,
step): a resumed run continues with exactly the batches it would have seen. Fixed evenly spaced examples
(:func:`evenly_spaced`, :class:`Batches`) fit the block filter and measure the data's scales (:func:`data_scales`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..dataset.shard_format import ARRAYS
from ..dataset.shard_reader import FingerprintFiles, list_shards, open_shard, read_rows
from ..errors import ConfigError, SpnRestoreError


class ShardDataset(Dataset):
    """All examples of one split (its cameras in sorted order). ``dataset[list_of_indices]`` -> dict with
    ``rgb`` uint8 (B, 3, P, P), ``residual``, ``target``, ``other_target`` float32 (B, 1, P, P)
    and ``quality`` uint8 (B,). Memory maps (shards and fingerprints) are opened lazily in each worker
    process."""

    def __init__(self, dataset_dir: str | os.PathLike, split: str):
        self.dataset_dir, self.split = Path(dataset_dir), split
        self.shards = list_shards(dataset_dir, split)
        files = FingerprintFiles()
        sizes = [len(open_shard(s, files)["quality"]) for s in self.shards]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._arrays: list[dict[str, np.ndarray]] | None = None
        self._pid = None

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_arrays"], state["_pid"] = None, None
        return state

    def arrays(self) -> list[dict[str, np.ndarray]]:
        """The memory-mapped arrays of every shard (opened once per process)."""
        if self._arrays is None or self._pid != os.getpid():
            files = FingerprintFiles()
            self._arrays, self._pid = [open_shard(s, files) for s in self.shards], os.getpid()
        return self._arrays

    @property
    def patch(self) -> int:
        return int(self.arrays()[0]["rgb"].shape[-1]) if self.shards else 0

    def __getitem__(self, indices) -> dict[str, torch.Tensor]:
        indices = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} examples")
        order = np.argsort(indices, kind="stable")
        shard_of = np.searchsorted(self.starts, indices[order], side="right") - 1
        parts = {name: [] for name in ARRAYS}
        for s in np.unique(shard_of):
            local = indices[order][shard_of == s] - self.starts[s]
            rows = read_rows(self.arrays()[s], local)
            for name in ARRAYS:
                parts[name].append(rows[name])
        back = np.argsort(order, kind="stable")
        return {name: torch.from_numpy(np.concatenate(parts[name])[back]) for name in ARRAYS}


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of ``n`` examples in one epoch (PCG64 seeded with (seed, epoch))."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class TrainBatches(Sampler):
    """Batches of example indices for steps ``start``..``stop - 1``; step s is batch s % steps_per_epoch
    of epoch s // steps_per_epoch (incomplete last batches of an epoch are dropped)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int):
        if n < batch_size:
            raise ConfigError(
                f"batch_size = {batch_size} but the train split has only {n} examples; lower batch_size "
                "or build more training pairs."
            )
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.steps_per_epoch = n // batch_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        epoch, perm = None, None
        for step in range(self.start, self.stop):
            if step // self.steps_per_epoch != epoch:
                epoch = step // self.steps_per_epoch
                perm = epoch_permutation(self.n, self.seed, epoch)
            b = step % self.steps_per_epoch
            yield perm[b * self.batch_size:(b + 1) * self.batch_size].tolist()


class OrderedBatches(Sampler):
    """All ``n`` indices in order, in batches of ``batch_size`` (the last one smaller); for validation."""

    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size = n, batch_size

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        for start in range(0, self.n, self.batch_size):
            yield list(range(start, min(start + self.batch_size, self.n)))


def evenly_spaced(dataset: ShardDataset, max_examples: int, chunk: int = 128) -> list[list[int]]:
    """Up to ``max_examples`` evenly spaced example indices of ``dataset``, in chunks of ``chunk``."""
    idx = np.unique(np.linspace(0, len(dataset) - 1, min(len(dataset), max_examples)).round().astype(np.int64))
    return [part.tolist() for part in np.array_split(idx, -(-len(idx) // chunk))]


class Batches:
    """Re-iterable batches ``dataset[chunk]`` over fixed index chunks (for the block filter's two passes)."""

    def __init__(self, dataset: ShardDataset, chunks: list[list[int]]):
        self.dataset, self.chunks = dataset, chunks

    def __iter__(self):
        return (self.dataset[chunk] for chunk in self.chunks)


@torch.no_grad()
def data_scales(dataset: ShardDataset, prefilter: Callable | None = None, max_examples: int = 1024) -> tuple[float, float]:
    """Standard deviations of the (prefiltered) residuals and of the targets over up to ``max_examples``
    evenly spaced examples; ``prefilter(rgb01, residual, quality)`` is the generator's block filter."""
    return batch_scales(Batches(dataset, evenly_spaced(dataset, max_examples)), prefilter, dataset.dataset_dir)


@torch.no_grad()
def batch_scales(batches: Iterable[dict], prefilter: Callable | None = None, where: object = "training data") -> tuple[float, float]:
    """Standard deviations of the (prefiltered) residuals and of the targets of ``batches`` (float64 sums);
    a constant array is an error naming ``where``."""
    sums = np.zeros((2, 3))  # per array: count, sum, sum of squares (float64)
    for batch in batches:
        residual = batch["residual"]
        if prefilter is not None:
            residual = prefilter(batch["rgb"].float() / 255.0, residual, batch["quality"])
        for row, x in enumerate((residual.double(), batch["target"].double())):
            sums[row] += (x.numel(), x.sum().item(), (x * x).sum().item())
    r, t = (float(np.sqrt(max(0.0, s2 / n - (s1 / n) ** 2))) for n, s1, s2 in sums)
    if not (r > 0 and t > 0):
        raise SpnRestoreError(f"{where}: train residuals or targets are all constant (std {r}, {t}); "
                              "rebuild the data set.")
    return r, t
