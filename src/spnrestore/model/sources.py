"""What the training engine (:class:`.train.Trainer`) trains on: a data source.

One engine trains the restorer (its networks, losses, optimisers, schedule, validation, selection, logs,
checkpoints and resumption: :mod:`.train`); a source only supplies the examples, as batch dicts of ``rgb``
uint8 (B, 3, P, P), ``residual``, ``target`` and ``other_target`` float32 (B, 1, P, P) and ``quality`` (B,):

* :class:`ShardSource`: a drive's training-pair shards (``spnrestore run``, the workflow's rule ``train``):
  the train split in the batch order of :class:`.data.TrainBatches`, the val split, and the whole validation
  images scored against the training cameras' fingerprints (:mod:`.image_validation`);
* :class:`SyntheticSource`: the synthetic-sensor stream (:mod:`spnrestore.dataset.synthetic`; ``spnrestore
  pretrain``, :mod:`.pretrain`), every example a new camera with an exact PRNU target. Step ``s`` trains on
  examples ``s * B .. (s + 1) * B - 1`` of stream 0, the block filter is fitted on examples of stream 2 and
  validation uses a fixed set of stream 1 at the qualities ``val_qualities`` in turn: all a function of the
  seed (and the batch size), whatever the number of worker processes. Each example is a ``patch + 2 *
  margin`` px JPEG; its noise residual is computed in batches on the training device with the workflow's
  algorithm (:class:`spnrestore.spn.torch_residual.TorchResidual`) and the centre ``patch`` px of residual,
  pixels and target are kept. The non-match term ``other_target`` of an example is the target of the one
  before it (the batch rolled by one; over the whole validation set for validation): another camera's,
  independent of it. Selection on synthetic data ignores it (:attr:`SyntheticSource.nonmatch_guard`): the
  step kept is the one with the highest mean NCC with the exact target over the validation set;
* :class:`RealSource`: real cameras' JPEG patches whose targets come from fingerprints of the other half of
  the same camera's images (:mod:`spnrestore.dataset.real`; ``spnrestore pretrain`` with ``real.folder``):
  the fine-tune the shipped model had. Its targets are noisy estimates, so selection keeps the non-match guard.

A source is given the resolved training configuration and the device by :meth:`DataSource.open`, then
asked for batches; ``identity`` is compared when a run is resumed, ``record`` is written into every
checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Protocol, Sequence, Sized

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..dataset import real
from ..dataset.shard_reader import manifest_sha256
from ..dataset.synthetic import SensorRanges, example_seed, synthetic_photo
from ..errors import ConfigError, SpnRestoreError
from ..spn.torch_residual import TorchResidual
from .data import Batches, OrderedBatches, ShardDataset, TrainBatches, batch_scales, data_scales, evenly_spaced
from .signals import worker_init
from .validation import load_validation_images

logger = logging.getLogger(__name__)

#: Examples the data scales (input and target standard deviations) are measured on.
SCALE_EXAMPLES = 1024
#: Examples per batch when the synthetic validation and filter-fitting sets are made.
MAKE_BATCH = 256
#: Modules whose source makes the synthetic stream: their hash identifies the data (a resumed run refuses a
#: changed generator, whose stream would differ from the examples already trained on); absent ones are skipped.
GENERATOR_MODULES = ("spnrestore.dataset.synthetic", "spnrestore.dataset.phone", "spnrestore.dataset.phone_tables")


class DataSource(Protocol):
    """What :class:`.train.Trainer` needs from its data."""

    where: str  #: names the data in messages
    nonmatch_guard: bool  #: selection refuses steps that raise the non-match NCC (:func:`.validation.selection_key`)

    def open(self, cfg: Mapping, device: torch.device) -> None:
        """Bind the resolved training configuration and the device; an unusable source raises here."""

    @property
    def patch(self) -> int:
        """px a side of the examples."""

    @property
    def train_examples(self) -> int | None:
        """Examples of the train split (epochs, batch order); None for an endless stream."""

    @property
    def val_set(self) -> Sized:
        """The validation examples (length 0: none; the last step's model is then kept)."""

    def describe(self) -> str:
        """The data in words, for the log."""

    def identity(self) -> dict:
        """Plain values a resumed run must find unchanged (also written into checkpoints)."""

    def record(self) -> dict:
        """Further plain values written into checkpoints (where the data came from)."""

    def train_batches(self, start: int, stop: int) -> Iterable[dict]:
        """The batches of steps ``start`` .. ``stop - 1``, in order (a function of the step)."""

    def val_batches(self) -> Iterable[dict]:
        """The validation set in batches of ``batch_size``, the same every time."""

    def filter_batches(self) -> Iterable[dict]:
        """Re-iterable batches (``filter_examples`` examples) the block filter is fitted on."""

    def scales(self, prefilter: Callable | None) -> tuple[float, float]:
        """Standard deviations of the prefiltered residuals and of the targets (the networks' units)."""

    def image_validation(self, sigma: float | None):
        """Whole-image validation (:class:`.image_validation.ImageValidation`) or None."""


# ------------------------------------------------------------------------------------------------ shards
class ShardSource:
    """A drive's training-pair shards (``dataset_dir``): today's drive training, bit for bit.
    ``fingerprints`` (fingerprint ``.npy`` by camera): whole validation images are scored against those of
    the training cameras."""

    nonmatch_guard = True

    def __init__(self, dataset_dir: str | os.PathLike, fingerprints: Mapping[str, str | os.PathLike] | None = None):
        self.dataset_dir = Path(dataset_dir)
        self.where = os.fspath(self.dataset_dir)
        self.fingerprints = dict(fingerprints or {})
        self.manifest_hash = manifest_sha256(self.dataset_dir)
        self.train_set = ShardDataset(self.dataset_dir, "train")
        self._val_set = ShardDataset(self.dataset_dir, "val")

    def open(self, cfg: Mapping, device: torch.device) -> None:
        self.cfg, self.cuda = cfg, device.type == "cuda"
        if len(self.train_set) == 0:
            raise SpnRestoreError(
                f"{self.dataset_dir}: the train split has no examples: no image has the role train (every image "
                "builds a fingerprint, is held out or is in another split), or the patch rule "
                "(dataset.patch_rule) rejected every patch of the train images. Add images to the drive, lower "
                "spn.fingerprint_images, or lower dataset.patch or relax dataset.patch_rule; or train nothing "
                "here and evaluate a model trained elsewhere with model.checkpoint: PATH.")

    @property
    def patch(self) -> int:
        return self.train_set.patch

    @property
    def train_examples(self) -> int:
        return len(self.train_set)

    @property
    def val_set(self) -> ShardDataset:
        return self._val_set

    def describe(self) -> str:
        return f"{len(self.train_set)} train / {len(self._val_set)} val patches"

    def identity(self) -> dict:
        return {"manifest_sha256": self.manifest_hash}

    def record(self) -> dict:
        return {"dataset_dir": os.fspath(self.dataset_dir)}

    def loader(self, dataset: ShardDataset, sampler) -> DataLoader:
        """DataLoader of whole batches (``dataset[indices]``) in ``sampler``'s order."""
        workers = self.cfg["num_workers"]
        return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=workers, pin_memory=self.cuda,
                          prefetch_factor=4 if workers else None, persistent_workers=False,
                          worker_init_fn=worker_init if workers else None)

    def train_batches(self, start: int, stop: int) -> DataLoader:
        cfg = self.cfg
        return self.loader(self.train_set, TrainBatches(len(self.train_set), cfg["batch_size"], cfg["seed"], start, stop))

    def val_batches(self) -> DataLoader:
        return self.loader(self._val_set, OrderedBatches(len(self._val_set), self.cfg["batch_size"]))

    def filter_batches(self) -> Batches:
        return Batches(self.train_set, evenly_spaced(self.train_set, self.cfg["filter_examples"]))

    def scales(self, prefilter: Callable | None) -> tuple[float, float]:
        return data_scales(self.train_set, prefilter, SCALE_EXAMPLES)

    def image_validation(self, sigma: float | None):
        return load_validation_images(self.dataset_dir, self.fingerprints, self.cfg, sigma)


# --------------------------------------------------------------------------------------------- synthetic
def sensor_ranges(given: Mapping | None) -> SensorRanges:
    """:class:`SensorRanges` from the ``synthetic.ranges`` section (fields not given keep their default); a
    name that is not a field is a ConfigError naming it and the fields."""
    known = [f.name for f in fields(SensorRanges)]
    if unknown := sorted(set(given or {}) - set(known)):
        raise ConfigError(f"training config: unknown key(s) {', '.join(f'synthetic.ranges.{k}' for k in unknown)}; "
                          f"allowed under synthetic.ranges (spnrestore.dataset.synthetic.SensorRanges): "
                          f"{', '.join(known)}. Remove the key or fix its spelling.")
    return SensorRanges(**{k: tuple(v) if isinstance(v, list) else v for k, v in (given or {}).items()})


def generator_sha256() -> str:
    """SHA-256 of the source of :data:`GENERATOR_MODULES` (what makes the synthetic stream)."""
    digest = hashlib.sha256()
    for name in GENERATOR_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        digest.update(name.encode() + b"\0" + Path(module.__file__).read_bytes())
    return digest.hexdigest()


class SyntheticBatches(IterableDataset):
    """Batches ``start`` .. ``stop - 1`` of ``stream`` (``stop`` None: endless): batch ``b`` holds examples
    ``b * size`` .. ``(b + 1) * size - 1`` (up to ``count``) as ``rgb`` uint8 (B, S, S, 3), ``target`` float32
    (B, S, S), ``quality`` (B,). Example ``i`` is the photo of a new camera drawn from ``[seed, stream, i]`` at
    quality ``qualities[i % len(qualities)]``, or (``qualities`` None) at a quality drawn from its generator. Worker ``w`` of ``n`` makes the batches ``b``
    with ``(b - start) % n == w``: the loader returns them in order, so the batches do not depend on ``n``."""

    def __init__(self, s: Mapping, seed: int, ranges: SensorRanges, stream: int, size: int, start: int = 0,
                 stop: int | None = None, count: int | None = None, qualities: Sequence[int] | None = None):
        self.s, self.seed, self.ranges, self.stream, self.size = s, seed, ranges, stream, size
        self.start, self.stop, self.count, self.qualities = start, stop, count, qualities

    def example(self, i: int) -> tuple:
        rng = example_seed(self.seed, self.stream, i)
        low, high = self.s["qualities"]
        step = self.s["quality_step"]
        q = self.qualities[i % len(self.qualities)] if self.qualities else low + step * int(rng.integers(0, (high - low) // step + 1))
        rgb, target, _ = synthetic_photo(rng, self.s["patch"] + 2 * self.s["margin"], q, self.ranges)
        return rgb, target, q

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info else (0, 1)
        if info is not None:
            torch.set_num_threads(1)
            cv2.setNumThreads(1)
        b = self.start + w
        while self.stop is None or b < self.stop:
            last = (b + 1) * self.size if self.count is None else min((b + 1) * self.size, self.count)
            made = [self.example(i) for i in range(b * self.size, last)]
            yield {"rgb": torch.from_numpy(np.stack([m[0] for m in made])),
                   "target": torch.from_numpy(np.stack([m[1] for m in made])),
                   "quality": torch.tensor([m[2] for m in made])}
            b += n


class Prepare:
    """Turns a batch of whole photos into training arrays on ``device``: the residual of each photo (the
    workflow's algorithm, with ``sigma``), then the centre crops: ``rgb`` uint8 (B, 3, P, P), ``residual`` and
    ``target`` float32 (B, 1, P, P), ``quality`` (B,)."""

    def __init__(self, s: Mapping, device: torch.device):
        self.residual = TorchResidual(device, sigma=s["sigma"])
        self.m, self.p, self.device = s["margin"], s["patch"], device

    def __call__(self, batch: Mapping) -> dict:
        rgb = batch["rgb"].to(self.device, non_blocking=True)
        w = self.residual(rgb)
        crop = (slice(None), slice(self.m, self.m + self.p), slice(self.m, self.m + self.p))
        return {"rgb": rgb[crop].permute(0, 3, 1, 2).contiguous(), "residual": w[crop][:, None].float(),
                "target": batch["target"].to(self.device)[crop][:, None].float(),
                "quality": batch["quality"].to(self.device)}


def with_other(batch: dict) -> dict:
    """``batch`` with ``other_target``: each example's non-match term is the target of the example before it
    (the batch rolled by one), another new camera's."""
    return {**batch, "other_target": batch["target"].roll(1, 0)}


class Examples:
    """A fixed set of prepared examples (dict of CPU tensors, first dimension the example)."""

    def __init__(self, arrays: Mapping[str, torch.Tensor]):
        self.arrays = dict(arrays)

    def __len__(self) -> int:
        return len(self.arrays["quality"])

    def batches(self, size: int) -> Iterator[dict]:
        for start in range(0, len(self), size):
            yield {k: v[start:start + size] for k, v in self.arrays.items()}


class SyntheticSource:
    """The synthetic-sensor stream of pretraining, from the ``synthetic`` section and ``seed`` of a resolved
    training configuration (see the module's description)."""

    where = "synthetic sensors"
    nonmatch_guard = False  # selection: the mean NCC with the exact target (other_target: independent cameras)

    def __init__(self, cfg: Mapping):
        self.s, self.seed = dict(cfg["synthetic"]), int(cfg["seed"])
        self.ranges = sensor_ranges(self.s["ranges"])
        low, high = self.s["qualities"]
        if low > high:
            raise ConfigError(f"training config: synthetic.qualities = {self.s['qualities']}: give [lowest, highest].")
        self._val: Examples | None = None
        self._scale_sample: list[dict] | None = None
        self.generator_sha256 = generator_sha256()

    def open(self, cfg: Mapping, device: torch.device) -> None:
        if cfg["epochs"]:
            raise ConfigError(f"training config: epochs = {cfg['epochs']}: the synthetic stream never repeats an "
                              "example and has no epochs; set epochs to null and count steps.")
        if cfg["batch_size"] < 2:
            raise ConfigError("training config: batch_size = 1: on synthetic sensors the non-match term of an example "
                              "is another example's target in its batch; use batch_size >= 2.")
        self.cfg, self.device = cfg, device
        self.prepare = Prepare(self.s, device)
        qualities = self.s["val_qualities"]
        val = self._made(1, self.s["val_examples"], qualities)
        arrays = {k: torch.cat([b[k] for b in val]) for k in val[0]}
        self._val = Examples(with_other(arrays))
        logger.info(f"synthetic sensors: {len(self._val)} validation examples (stream 1, qualities {qualities} in "
                    "turn)")

    def _made(self, stream: int, count: int, qualities: Sequence[int] | None = None) -> list[dict]:
        """Examples ``0 .. count - 1`` of ``stream``, prepared, in CPU batches of :data:`MAKE_BATCH`."""
        data = SyntheticBatches(self.s, self.seed, self.ranges, stream, MAKE_BATCH, 0, -(-count // MAKE_BATCH),
                                count, qualities)
        return [{k: v.cpu() for k, v in self.prepare(b).items()} for b in self._loader(data, 2)]

    def _loader(self, data: IterableDataset, prefetch: int) -> DataLoader:
        workers = self.cfg["num_workers"]
        # spawned, not forked: a process forked after OpenCV's or torch's thread pools ran can deadlock on their
        # locks (seen with the generator's OpenCV calls)
        return DataLoader(data, batch_size=None, num_workers=workers, prefetch_factor=prefetch if workers else None,
                          worker_init_fn=worker_init if workers else None,
                          multiprocessing_context="spawn" if workers else None)

    @property
    def patch(self) -> int:
        return self.s["patch"]

    @property
    def train_examples(self) -> None:
        return None

    @property
    def val_set(self) -> Examples:
        return self._val if self._val is not None else Examples({"quality": torch.zeros(0)})

    def describe(self) -> str:
        return (f"synthetic sensors (a new camera per example, {self.s['patch']} px at JPEG qualities "
                f"{self.s['qualities'][0]}..{self.s['qualities'][1]}), {len(self.val_set)} val examples")

    def settings(self) -> dict:
        """The stream's settings as recorded: the ``synthetic`` section with every range's value, the seed."""
        return {**self.s, "ranges": self.ranges.as_dict(), "seed": self.seed}

    def identity(self) -> dict:
        return {"generator_sha256": self.generator_sha256}

    def record(self) -> dict:
        return {"pretrain": self.settings()}

    def train_batches(self, start: int, stop: int) -> Iterator[dict]:
        data = SyntheticBatches(self.s, self.seed, self.ranges, 0, self.cfg["batch_size"], start, stop)
        for batch in self._loader(data, 8):
            yield with_other(self.prepare(batch))

    def val_batches(self) -> Iterator[dict]:
        return self.val_set.batches(self.cfg["batch_size"])

    def filter_batches(self) -> list[dict]:
        batches = self._made(2, self.cfg["filter_examples"])
        self._scale_sample = batches[:-(-SCALE_EXAMPLES // MAKE_BATCH)]
        return batches

    def scales(self, prefilter: Callable | None) -> tuple[float, float]:
        if self._scale_sample is None:
            self._scale_sample = self._made(2, min(SCALE_EXAMPLES, self.cfg["filter_examples"]))
        sample = [{k: v[:SCALE_EXAMPLES - MAKE_BATCH * i] for k, v in b.items()} for i, b in enumerate(self._scale_sample)]
        return batch_scales(sample, prefilter, self.where)

    def image_validation(self, sigma: float | None) -> None:
        return None


# ------------------------------------------------------------------------------------------------ real cameras

class RealSource:
    """Real cameras' patches with fingerprint targets (:mod:`spnrestore.dataset.real`), held in memory.

    ``per_camera`` maps a camera's name to its examples (:func:`spnrestore.dataset.real.camera_examples`).
    Step ``s`` trains on a batch drawn without replacement with the generator seeded by (seed, s), so the data
    are a function of the seed; every ``val_every``-th patch of each camera validates, taken in turns across
    cameras so that each validation example's non-match term (the one before it) is another camera's."""

    where = "real cameras"
    nonmatch_guard = True  # the targets are estimates: keep steps that do not raise the non-match NCC

    def __init__(self, per_camera: Mapping[str, Mapping], patch: int, val_every: int = 10,
                 settings: Mapping | None = None, synthetic: "SyntheticSource | None" = None,
                 synthetic_share: float = 0.0):
        if len(per_camera) < 2:
            raise ConfigError(f"real cameras: {len(per_camera)} usable camera(s) ({', '.join(per_camera) or 'none'}); "
                              "training on real cameras needs at least 2 whose fingerprint identifies their own "
                              "images (the non-match term of an example is another camera's).")
        self.cameras, self._patch, self._settings = sorted(per_camera), int(patch), dict(settings or {})
        # a share of each batch from the synthetic stream (its examples keep what the base learned there)
        self._synthetic, self._share, self._n_synthetic = synthetic, float(synthetic_share), 0
        train_parts, val_parts = [], []
        for name in self.cameras:
            arrays = {k: torch.from_numpy(np.asarray(per_camera[name][k])) for k in real.ARRAYS}
            n = len(arrays["quality"])
            val = torch.arange(0, n, val_every)
            keep = torch.ones(n, dtype=torch.bool)
            keep[val] = False
            train_parts.append({k: v[keep] for k, v in arrays.items()})
            val_parts.append({k: v[val] for k, v in arrays.items()})
        self.train_arrays = {k: torch.cat([p[k] for p in train_parts]) for k in real.ARRAYS}
        turns = min(len(p["quality"]) for p in val_parts)  # round-robin across cameras
        self.val_arrays = {k: torch.stack([p[k][:turns] for p in val_parts], 1).flatten(0, 1) for k in real.ARRAYS}

    @classmethod
    def from_config(cls, cfg: Mapping, per_camera: Mapping[str, Mapping]) -> "RealSource":
        """The source of the cameras ``per_camera`` with a resolved training configuration's ``real`` section
        (patch, validation share, the synthetic share: :func:`mixed_synthetic`), recording its settings."""
        r = cfg["real"]
        settings = {k: r[k] for k in ("qualities", "patches", "val_every", "min_pce", "synthetic_share")}
        return cls(per_camera, r["patch"], r["val_every"], settings, *mixed_synthetic(cfg))

    def open(self, cfg: Mapping, device: torch.device) -> None:
        if cfg["epochs"]:
            raise ConfigError(f"training config: epochs = {cfg['epochs']}: real-camera batches are drawn per step; "
                              "set epochs to null and count steps.")
        if cfg["batch_size"] > len(self.train_arrays["quality"]):
            raise ConfigError(f"training config: batch_size = {cfg['batch_size']} exceeds the "
                              f"{len(self.train_arrays['quality'])} real-camera training patches; lower batch_size "
                              "or raise real.patches.")
        self.cfg, self.device = cfg, device
        if self._synthetic is not None and self._share > 0:
            self._n_synthetic = round(cfg["batch_size"] * self._share)
            if not 2 <= self._n_synthetic < cfg["batch_size"]:
                raise ConfigError(f"training config: real.synthetic_share = {self._share} of batch_size = "
                                  f"{cfg['batch_size']} gives {self._n_synthetic} synthetic examples a step; give a "
                                  "share that leaves at least 2 synthetic and 1 real example in each batch.")
            self._synthetic.open({**cfg, "batch_size": self._n_synthetic}, device)

    @property
    def patch(self) -> int:
        return self._patch

    @property
    def train_examples(self) -> None:
        return None

    @property
    def val_set(self) -> Examples:
        return Examples(with_other(self.val_arrays))

    def describe(self) -> str:
        return (f"real cameras {', '.join(self.cameras)}: {len(self.train_arrays['quality'])} train and "
                f"{len(self.val_arrays['quality'])} val patches of {self._patch} px")

    def identity(self) -> dict:
        mixed = {"synthetic_share": self._share, **self._synthetic.identity()} if self._share > 0 else {}
        return {"real_cameras": self.cameras, **mixed}

    def record(self) -> dict:
        mixed = {"synthetic": self._synthetic.settings()} if self._share > 0 else {}
        return {"real": {**self._settings, "cameras": self.cameras, "patch": self._patch, **mixed}}

    def train_batches(self, start: int, stop: int) -> Iterator[dict]:
        """Step ``s``: real patches drawn with the generator seeded by (seed, s), then, with a synthetic share,
        examples of the synthetic stream's step ``s`` (a function of the seed too)."""
        n, size = len(self.train_arrays["quality"]), self.cfg["batch_size"] - self._n_synthetic
        synthetic = iter(self._synthetic.train_batches(start, stop)) if self._n_synthetic else None
        for step in range(start, stop):
            idx = torch.from_numpy(np.random.default_rng([self.cfg["seed"], step]).choice(n, size, replace=False))
            batch = {k: v[idx] for k, v in self.train_arrays.items()}
            if synthetic is not None:
                extra = next(synthetic)
                batch = {k: torch.cat([batch[k], extra[k].to(batch[k].device, batch[k].dtype)]) for k in real.ARRAYS}
            yield with_other(batch)

    def val_batches(self) -> Iterator[dict]:
        return self.val_set.batches(self.cfg["batch_size"])

    def filter_batches(self) -> list[dict]:
        raise ConfigError("training config: training on real cameras fine-tunes a model (its block filter is "
                          "kept); set init to a checkpoint ('pretrained-synthetic': the synthetic base).")

    def scales(self, prefilter: Callable | None) -> tuple[float, float]:
        sample = {k: v[:SCALE_EXAMPLES] for k, v in self.train_arrays.items()}
        return batch_scales([sample], prefilter, self.where)

    def image_validation(self, sigma: float | None) -> None:
        return None


def real_examples(cfg: Mapping, cache: Path | None) -> tuple[dict[str, dict], list[str]]:
    """The examples of every camera of a resolved training configuration's ``real.folder`` (kept in ``cache``)
    and the names of those to train on: cameras with examples whose halves' plain PCE is above ``real.min_pce``,
    not in ``real.exclude``; the log names each camera, its patches and PCE, and those not used."""
    r, sigma = cfg["real"], cfg["synthetic"]["sigma"]
    try:
        cams = real.camera_folders(r["folder"])
    except SpnRestoreError as exc:
        raise ConfigError(f"training config: real.folder = {r['folder']!r}: {exc}") from None
    examples, usable = {}, []
    for cam in cams:
        examples[cam.name] = arrays = real.camera_examples(cam, r["qualities"], r["patch"], r["patches"], cfg["seed"],
                                                           sigma, cache)
        own = float(arrays["own_pce"])
        if "quality" in arrays and own > r["min_pce"] and cam.name not in r["exclude"]:
            usable.append(cam.name)
        logger.info(f"real cameras: {cam.name}: {len(arrays.get('quality', []))} patches, halves' plain PCE "
                    f"{own:.0f}{'' if cam.name in usable else ' (not used)'}")
    return examples, usable


def real_source(cfg: Mapping, cache: Path | None) -> RealSource:
    """The real-camera source of a resolved training configuration's ``real`` section: its folder's cameras
    whose plain fingerprint identifies their own images (:func:`real_examples`), with the examples kept in
    ``cache``."""
    examples, usable = real_examples(cfg, cache)
    return RealSource.from_config(cfg, {name: examples[name] for name in usable})


def mixed_synthetic(cfg: Mapping) -> tuple["SyntheticSource | None", float]:
    """The synthetic stream mixed into real-camera batches (``real.synthetic_share`` of each batch; None where
    the share is 0), with the ``synthetic`` section's settings; validation stays on the real cameras."""
    share = float(cfg["real"]["synthetic_share"])
    if share <= 0:
        return None, 0.0
    if cfg["synthetic"]["patch"] != cfg["real"]["patch"]:
        raise ConfigError(f"training config: synthetic.patch = {cfg['synthetic']['patch']} and real.patch = "
                          f"{cfg['real']['patch']}: mixed batches need one patch size; set both alike.")
    return SyntheticSource({**cfg, "synthetic": {**cfg["synthetic"], "val_examples": 2}}), share
