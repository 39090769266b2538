"""Training loop of the restoration GAN: resumable, logged, checkpointed.

Entry point: :func:`train`. Files in ``work_dir``:

* ``last.pt`` — full training state (generator, discriminator, optimisers, step, RNG states, validation
  history) written every ``checkpoint_every`` steps and at the end; a re-run resumes from it;
* ``best.pt`` — the model selected on validation (see :func:`selection_key`);
* ``train_log.csv`` — per-step losses, learning rate, elapsed seconds;
* ``val_log.csv`` — per-validation NCC with the target for the plain and the restored residual, the gain,
  the non-match NCC (with another camera's fingerprint term) for both, and, when fingerprints are given,
  the PCE of whole validation images (:mod:`.image_validation`); then the selection flags.

The final ``out_checkpoint`` holds the selected model, its configuration, the training configuration,
the data manifest hash, metrics, the HF-loss kind and versions; it loads with ``weights_only=True``.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..atomic import save_csv
from ..dataset.shards import manifest_sha256, read_manifest
from ..errors import ConfigError, SpnRestoreError
from ..restore import restore_residual
from .checkpoint import config_difference, load_checkpoint, model_payload, save_checkpoint
from .data import OrderedBatches, ShardDataset, TrainBatches
from .image_validation import ImageValidation, load_image_validation
from .losses import (ADVERSARIAL, GeneratorLoss, HighFrequencyLoss, LossWeights, discriminator_loss, ncc)
from .networks import Discriminator, Generator, GeneratorConfig
from .vgg import DEFAULT_LAYERS, VGG16_FILE, VGG16_SHA256, load_vgg16_features

DEFAULTS: dict[str, Any] = {
    "steps": 20000,            # optimiser steps (ignored when epochs is set)
    "epochs": None,            # passes over the train split (drop-last batches)
    "batch_size": 32,
    "lr": 2e-4,                # generator learning rate (peak)
    "lr_d": 2e-4,              # discriminator learning rate (peak)
    "warmup_steps": 200,       # linear warm-up, then cosine decay to min_lr_fraction * lr
    "min_lr_fraction": 0.1,
    "betas": [0.9, 0.99],
    "betas_d": [0.5, 0.999],
    "weight_decay": 0.0,
    "grad_clip": 1.0,          # max global gradient norm of the generator (0: off)
    "loss_weights": LossWeights().as_dict(),
    "adversarial": "lsgan",    # or "hinge"
    "adv_start_step": 1000,    # adversarial terms start after this many steps
    "model": GeneratorConfig().as_dict(),
    "discriminator": {"width": 64, "layers": 3},
    "augment": True,           # random flips / transposition per example (dihedral group)
    "seed": 0,
    "checkpoint_every": 1000,
    "val_every": None,         # default: checkpoint_every
    "val_batches": None,       # cap on validation batches (None: the whole val split)
    "log_every": 10,           # steps between writes of train_log.csv rows
    "nonmatch_tolerance_se": 2.0,
    "val_images_per_camera": 4,  # whole validation images per training camera scored by PCE (0: off)
    "val_image_crop": 1024,    # centred crop (px a side) of each whole validation image
    "nonmatch_pce_margin": 0.25,  # largest non-match PCE may exceed the plain residual's by this fraction
    "pce_threshold": 60.0,     # ... and never reach the decision threshold
    "device": "auto",          # auto | cpu | cuda | cuda:N
    "bf16": True,              # bf16 autocast on CUDA
    "channels_last": True,     # on CUDA
    "compile": False,          # torch.compile the networks
    "num_workers": 4,
    "threads": None,           # torch.set_num_threads
    "vgg_weights": None,       # path of vgg16-397923af.pth (None: weight-free Haar HF loss)
    "vgg_sha256": VGG16_SHA256,
    "vgg_layers": list(DEFAULT_LAYERS),
    "filter_examples": 20000,  # training examples (evenly spaced) the block filter is fitted on
    "time_budget_s": None,     # stop (and finish normally) after this many seconds, resumed runs included
    "progress": True,          # tqdm progress bar on stderr
}
# Keys that may change between a killed run and its resumption (they do not change the trajectory).
RUNTIME_KEYS = {"device", "bf16", "channels_last", "compile", "num_workers", "threads", "progress",
                "log_every", "checkpoint_every", "val_every", "val_batches", "time_budget_s", "vgg_weights",
                "val_images_per_camera", "val_image_crop", "nonmatch_pce_margin", "pce_threshold"}
TRAIN_COLUMNS = ["step", "epoch", "lr", "total", "corr", "lf", "hf", "adv", "d", "time_s"]
VAL_COLUMNS = ["step", "epoch", "n", "ncc_plain", "ncc_restored", "gain", "gain_ratio", "nonmatch_plain",
               "nonmatch_restored", "nonmatch_raise", "nonmatch_raise_se", "eligible", "is_best"]


def resolve_config(cfg: Mapping | None) -> dict:
    """``DEFAULTS`` updated with ``cfg`` (nested ``model``, ``loss_weights``, ``discriminator`` merged), validated."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"training config: unknown key(s) {unknown}; allowed: {sorted(DEFAULTS)}.")
    out = copy.deepcopy(DEFAULTS)
    for key, value in cfg.items():
        out[key] = {**out[key], **(value or {})} if isinstance(out[key], dict) else value
    out["model"] = GeneratorConfig.from_dict(out["model"]).as_dict()
    out["loss_weights"] = LossWeights.from_dict(out["loss_weights"]).as_dict()

    def positive_int(key, minimum=1, optional=False):
        value = out[key]
        if optional and value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"training config: {key} = {value!r} must be an integer >= {minimum}.")

    for key in ("steps", "batch_size", "checkpoint_every", "log_every", "filter_examples"):
        positive_int(key)
    for key in ("epochs", "val_every", "val_batches", "threads"):
        positive_int(key, optional=True)
    for key in ("warmup_steps", "adv_start_step", "num_workers", "seed", "val_images_per_camera", "val_image_crop"):
        positive_int(key, minimum=0)
    for key in ("lr", "lr_d"):
        if not isinstance(out[key], (int, float)) or not out[key] > 0:
            raise ConfigError(f"training config: {key} = {out[key]!r} must be a number > 0.")
    if out["adversarial"] not in ADVERSARIAL:
        raise ConfigError(f"training config: adversarial = {out['adversarial']!r}; use one of {list(ADVERSARIAL)}.")
    for key in ("nonmatch_pce_margin", "pce_threshold"):
        if not isinstance(out[key], (int, float)) or isinstance(out[key], bool) or not out[key] >= 0:
            raise ConfigError(f"training config: {key} = {out[key]!r} must be a number >= 0.")
    if out["time_budget_s"] is not None and not out["time_budget_s"] > 0:
        raise ConfigError(f"training config: time_budget_s = {out['time_budget_s']!r} must be > 0 or null.")
    unknown_d = sorted(set(out["discriminator"]) - {"width", "layers"})
    if unknown_d:
        raise ConfigError(f"training config: discriminator: unknown key(s) {unknown_d}; allowed: width, layers.")
    out["val_every"] = out["val_every"] or out["checkpoint_every"]
    return out


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an unavailable CUDA request is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"training config: device = {name!r} but no CUDA device is available; use 'auto' or 'cpu'.")
    return device


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine from 1 to ``floor`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_hf_loss(cfg: Mapping, log: Callable[[str], None]) -> HighFrequencyLoss:
    """VGG-16 HF loss from ``cfg['vgg_weights']`` (hash-checked), or the weight-free Haar loss with a warning."""
    path = cfg["vgg_weights"]
    if path and Path(path).is_file():
        return HighFrequencyLoss(load_vgg16_features(path, cfg["vgg_sha256"], cfg["vgg_layers"]))
    reason = f"vgg_weights = {path!r} does not exist" if path else "vgg_weights is not set"
    message = (f"HF loss: {reason}; using the weight-free Haar wavelet HF loss instead (recorded in the checkpoint "
               f"as hf_loss='haar'). Nothing is downloaded: to use VGG-16 features, put {VGG16_FILE} on disk "
               "and set vgg_weights to its path.")
    log(message)
    warnings.warn(message, stacklevel=3)
    return HighFrequencyLoss(None)


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
    sums = np.zeros((2, 3))  # per array: count, sum, sum of squares (float64)
    for batch in Batches(dataset, evenly_spaced(dataset, max_examples)):
        residual = batch["residual"]
        if prefilter is not None:
            residual = prefilter(batch["rgb"].float() / 255.0, residual, batch["quality"])
        for row, x in enumerate((residual.double(), batch["target"].double())):
            sums[row] += (x.numel(), x.sum().item(), (x * x).sum().item())
    r, t = (float(np.sqrt(max(0.0, s2 / n - (s1 / n) ** 2))) for n, s1, s2 in sums)
    if not (r > 0 and t > 0):
        raise SpnRestoreError(f"{dataset.dataset_dir}: train residuals or targets are all constant (std {r}, {t}); "
                              "rebuild the data set.")
    return r, t


def dihedral(tensors: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Apply the same random flip / flip / transpose (per example) to every (B, C, P, P) tensor
    (``generator`` on the tensors' device, so no host synchronisation)."""
    b = tensors[0].shape[0]
    bits = torch.rand(3, b, generator=generator, device=generator.device).lt(0.5)
    out = []
    for t in tensors:
        t = torch.where(bits[0].view(-1, 1, 1, 1), t.flip(-1), t)
        t = torch.where(bits[1].view(-1, 1, 1, 1), t.flip(-2), t)
        out.append(torch.where(bits[2].view(-1, 1, 1, 1), t.transpose(-1, -2), t))
    return out


def selection_key(row: Mapping) -> tuple:
    """Order of validation rows for the best checkpoint. With whole-image validation (``pce_gain`` in the row):
    first the rows that neither raise the patches' non-match NCC nor widen the images' non-match PCE
    (:mod:`.image_validation`), by PCE gain; the others by the smaller largest non-match PCE. Without it:
    first the rows that do not raise the non-match NCC (raise <= tolerance x its standard error), by NCC
    gain; the others by the smaller raise."""
    if "pce_gain" in row:
        eligible = row["eligible"] and row["pce_eligible"]
        return (True, row["pce_gain"]) if eligible else (False, -row["pce_nonmatch_restored"])
    return (True, row["gain"]) if row["eligible"] else (False, -row["nonmatch_raise"])


class Trainer:
    """Networks, optimisers, losses and data of one training run (resumed from ``work_dir/last.pt`` when
    present); :func:`train` drives it, ``bench/bench_train.py`` times its :meth:`train_step`."""

    def __init__(self, dataset_dir, work_dir, cfg: dict, log: Callable[[str], None],
                 fingerprints: Mapping[str, str | os.PathLike] | None = None):
        self.cfg, self.log = cfg, log
        self.dataset_dir, self.work_dir = Path(dataset_dir), Path(work_dir)
        self.device = pick_device(cfg["device"])
        self.cuda = self.device.type == "cuda"
        self.amp = self.cuda and cfg["bf16"]
        self.memory_format = torch.channels_last if self.cuda and cfg["channels_last"] else torch.contiguous_format
        self.manifest_hash = manifest_sha256(self.dataset_dir)
        self.train_set = ShardDataset(self.dataset_dir, "train")
        self.val_set = ShardDataset(self.dataset_dir, "val")
        self.image_val = self._image_validation(fingerprints or {})
        if len(self.train_set) == 0:
            raise SpnRestoreError(f"{self.dataset_dir}: the train split has no examples; build the training pairs first.")
        model_cfg = GeneratorConfig.from_dict(cfg["model"])
        if self.train_set.patch % model_cfg.factor:
            raise ConfigError(f"training config: model downsamples by {model_cfg.factor} but the patches are "
                              f"{self.train_set.patch} px; use patches that are a multiple of {model_cfg.factor} "
                              "or a shallower model (depth / hourglass_depth).")
        self.steps_per_epoch = len(self.train_set) // cfg["batch_size"]
        self.total_steps = cfg["epochs"] * self.steps_per_epoch if cfg["epochs"] else cfg["steps"]
        self.weights = LossWeights.from_dict(cfg["loss_weights"])
        self.hf = make_hf_loss(cfg, log) if self.weights.hf else HighFrequencyLoss(None)
        self.hf_kind = self.hf.kind if self.weights.hf else "none"
        torch.manual_seed(cfg["seed"])
        self.G = Generator(model_cfg)
        self.D = Discriminator(**cfg["discriminator"])
        self.step, self.elapsed, self.train_time, self.val_rows, self.best = 0, 0.0, 0.0, [], None
        self.last_path = self.work_dir / "last.pt"
        resume = load_checkpoint(self.last_path) if self.last_path.exists() else None
        if resume is not None and resume.get("finished"):
            log(f"{self.last_path} is the end of a finished run: starting a new run (a run is resumed only "
                "when it was interrupted)")
            resume = None
        self.finished = False
        if resume is None:
            if self.G.block_filter is not None:
                blocks = self.G.block_filter.fit(Batches(self.train_set, evenly_spaced(self.train_set,
                                                                                       cfg["filter_examples"])))
                log(f"block filter fitted on {blocks} blocks per JPEG quality")
            r, t = data_scales(self.train_set, self.G.prefilter)
            self.G.residual_scale.fill_(r)
            self.G.target_scale.fill_(t)
        else:
            self._check_resume(resume)
            self.G.load_state_dict(resume["model_state"])
            self.D.load_state_dict(resume["discriminator_state"])
        for net in (self.G, self.D, self.hf):
            net.to(self.device, memory_format=self.memory_format)
        self.loss = GeneratorLoss(self.weights, self.hf, cfg["adversarial"])
        kw = {"fused": True} if self.cuda else {"foreach": True}
        self.opt_g = torch.optim.AdamW(self.G.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]),
                                       weight_decay=cfg["weight_decay"], **kw)
        self.opt_d = torch.optim.AdamW(self.D.parameters(), lr=cfg["lr_d"], betas=tuple(cfg["betas_d"]), **kw)
        if resume is not None:
            self.opt_g.load_state_dict(resume["optimizer_g"])
            self.opt_d.load_state_dict(resume["optimizer_d"])
            self.step, self.elapsed, self.train_time = resume["step"], resume["elapsed_s"], resume["train_time_s"]
            self.val_rows, self.best = list(resume["val_rows"]), resume["best"]
            torch.set_rng_state(resume["rng"]["torch"])
            if self.cuda and len(resume["rng"]["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(resume["rng"]["cuda"])
            log(f"resuming from {self.last_path} at step {self.step} of {self.total_steps}")
        self.g_run = torch.compile(self.G) if cfg["compile"] else self.G
        self.d_run = torch.compile(self.D) if cfg["compile"] else self.D

    def _image_validation(self, fingerprints: Mapping[str, str | os.PathLike]) -> ImageValidation | None:
        """Whole validation images scored against the fingerprints of the training cameras only (the holdout
        camera's fingerprint takes no part in training or selection)."""
        val = self.dataset_dir / "val" / "manifest.csv"
        if not fingerprints or not val.exists():
            return None
        trained = set(read_manifest(self.dataset_dir / "train" / "manifest.csv")["camera"].astype(str))
        found = load_image_validation(read_manifest(val), {c: p for c, p in fingerprints.items() if c in trained},
                                      self.cfg["val_images_per_camera"], self.cfg["val_image_crop"], self.log)
        if found is not None:
            self.log(f"image validation: {len(found)} validation JPEGs (crops of at most {self.cfg['val_image_crop']} "
                     f"px), {len(found.plain)} pairs with {len(trained)} training cameras' fingerprints")
        return found

    def _check_resume(self, state: Mapping) -> None:
        trajectory = {k: v for k, v in self.cfg.items() if k not in RUNTIME_KEYS}
        saved = {k: v for k, v in state["train_config"].items() if k not in RUNTIME_KEYS}
        problems = []
        if saved != trajectory:
            problems.append(f"training config differs ({config_difference(saved, trajectory)})")
        if state["manifest_sha256"] != self.manifest_hash:
            problems.append("the data set changed (manifest hash)")
        if state["hf_loss"] != self.hf_kind:
            problems.append(f"HF loss was {state['hf_loss']!r}, now {self.hf_kind!r} (VGG weights file found/missing)")
        if problems:
            raise SpnRestoreError(f"{self.last_path}: cannot resume: " + "; ".join(problems) +
                                  ". Restore the previous settings, or delete the work folder to start over.")

    # ----------------------------------------------------------------- batches
    def _inputs(self, batch: Mapping[str, torch.Tensor], step: int | None):
        """Batch on the device: rgb (0..1), plain residual, block-filtered residual, normalised target and
        other camera's target, quality. The filter runs before the augmentation (a transposed block would
        take the weights of the transposed frequencies), as on whole images at inference."""
        dev, fmt = self.device, self.memory_format
        rgb = batch["rgb"].to(dev, non_blocking=True).float().div_(255.0)
        residual = batch["residual"].to(dev, non_blocking=True)
        target = batch["target"].to(dev, non_blocking=True) / self.G.target_scale
        other = batch["other_target"].to(dev, non_blocking=True) / self.G.target_scale
        quality = batch["quality"].to(dev, non_blocking=True)
        with torch.no_grad():
            filtered = self.G.prefilter(rgb, residual, quality)
        if step is not None and self.cfg["augment"]:
            gen = torch.Generator(dev).manual_seed(self.cfg["seed"] * 1_000_003 + step)
            rgb, residual, filtered, target = dihedral([rgb, residual, filtered, target], gen)
        to = lambda t: t.contiguous(memory_format=fmt)  # noqa: E731
        return to(rgb), to(residual), to(filtered), to(target), to(other), quality

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        """One generator (and, once the adversarial terms are on, discriminator) update; returns detached losses."""
        cfg = self.cfg
        rgb, _, filtered, target, _, quality = self._inputs(batch, step)
        factor = lr_factor(step, self.total_steps, cfg["warmup_steps"], cfg["min_lr_fraction"])
        for group in self.opt_g.param_groups:
            group["lr"] = cfg["lr"] * factor
        for group in self.opt_d.param_groups:
            group["lr"] = cfg["lr_d"] * factor
        use_adv = self.weights.adv > 0 and step >= cfg["adv_start_step"]
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)
        with autocast:
            out = self.g_run(rgb, filtered, quality, prefiltered=True)
        r = filtered / self.G.residual_scale  # the critic's view of the input, like the generator's (std ~1)
        logs = {}
        if use_adv:
            self.D.requires_grad_(True)
            with autocast:
                loss_d = discriminator_loss(self.d_run(rgb, r, target, quality),
                                            self.d_run(rgb, r, out.detach(), quality), cfg["adversarial"])
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            self.D.requires_grad_(False)
            logs["d"] = loss_d.detach()
        with autocast:
            fake = self.d_run(rgb, r, out, quality) if use_adv else None
            terms = self.loss(out, target, fake)
        self.opt_g.zero_grad(set_to_none=True)
        terms["total"].backward()
        if cfg["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(self.G.parameters(), cfg["grad_clip"], foreach=True)
        self.opt_g.step()
        logs.update({k: v.detach() for k, v in terms.items()})
        logs["lr"] = torch.tensor(cfg["lr"] * factor)
        return logs

    # -------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict | None:
        """NCC statistics of the plain and restored residuals on the val split (None without a val split)."""
        if len(self.val_set) == 0:
            return None
        self.G.eval()
        sampler = OrderedBatches(len(self.val_set), self.cfg["batch_size"])
        loader = self.loader(self.val_set, sampler)
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("plain", "restored", "nm_plain", "nm_restored", "q")}
        for i, batch in enumerate(loader):
            if self.cfg["val_batches"] and i >= self.cfg["val_batches"]:
                break
            rgb, residual, filtered, target, other, quality = self._inputs(batch, None)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.g_run(rgb, filtered, quality, prefiltered=True)
            r = residual / self.G.residual_scale
            for key, value in (("plain", ncc(r, target)), ("restored", ncc(out, target)),
                               ("nm_plain", ncc(r, other)), ("nm_restored", ncc(out, other)), ("q", quality)):
                parts[key].append(value.float().cpu())
        v = {k: torch.cat(p).double().numpy() for k, p in parts.items()}
        raise_ = v["nm_restored"] - v["nm_plain"]
        se = float(raise_.std(ddof=1) / math.sqrt(len(raise_))) if len(raise_) > 1 else 0.0
        plain, restored = float(v["plain"].mean()), float(v["restored"].mean())
        row = {
            "step": self.step, "epoch": self.step / self.steps_per_epoch, "n": int(len(raise_)),
            "ncc_plain": plain, "ncc_restored": restored, "gain": restored - plain,
            "gain_ratio": restored / plain if plain > 0 else float("nan"),
            "nonmatch_plain": float(v["nm_plain"].mean()), "nonmatch_restored": float(v["nm_restored"].mean()),
            "nonmatch_raise": float(raise_.mean()), "nonmatch_raise_se": se,
        }
        row["eligible"] = bool(row["nonmatch_raise"] <= self.cfg["nonmatch_tolerance_se"] * se)
        for q in np.unique(v["q"]).astype(int).tolist():
            m = v["q"] == q
            row[f"ncc_plain_q{q}"], row[f"ncc_restored_q{q}"] = float(v["plain"][m].mean()), float(v["restored"][m].mean())
        if self.image_val is not None:
            scores = self.image_val.scores(lambda rgb, res, q: restore_residual(self.G, rgb, res, q, self.device))
            row.update(self.image_val.summary(scores, self.cfg["pce_threshold"], self.cfg["nonmatch_pce_margin"]))
        self.G.train()
        return row

    # ----------------------------------------------------------------- helpers
    def loader(self, dataset, sampler) -> DataLoader:
        workers = self.cfg["num_workers"]
        return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=workers, pin_memory=self.cuda,
                          prefetch_factor=4 if workers else None, persistent_workers=False)

    def metadata(self, **extra) -> dict:
        return {"train_config": copy.deepcopy(self.cfg), "manifest_sha256": self.manifest_hash,
                "dataset_dir": os.fspath(self.dataset_dir), "hf_loss": self.hf_kind, "seed": self.cfg["seed"],
                "torch_version": str(torch.__version__), **extra}

    def save_last(self) -> None:
        state = model_payload(self.G, **self.metadata(
            kind="training", discriminator_state={k: v.cpu() for k, v in self.D.state_dict().items()},
            optimizer_g=self.opt_g.state_dict(), optimizer_d=self.opt_d.state_dict(), step=self.step,
            elapsed_s=self.elapsed, train_time_s=self.train_time, val_rows=self.val_rows, best=self.best,
            finished=self.finished,
            rng={"torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state_all() if self.cuda else []}))
        save_checkpoint(self.last_path, state)


def _prepare_train_log(path: Path, step: int) -> None:
    """Keep only complete rows up to ``step`` (a killed run may have logged further or left a partial line)."""
    if step == 0 or not path.exists():
        save_csv(path, pd.DataFrame(columns=TRAIN_COLUMNS))
        return
    frame = pd.read_csv(path, on_bad_lines="skip")
    frame = frame[frame["time_s"].notna() & (frame["step"] <= step)].drop_duplicates("step")
    save_csv(path, frame)


def _fmt(value) -> str:
    return "" if value is None else repr(float(value))


def train(
    dataset_dir: str | os.PathLike,
    out_checkpoint: str | os.PathLike,
    work_dir: str | os.PathLike,
    cfg: Mapping | None = None,
    log: Callable[[str], None] = print,
    fingerprints: Mapping[str, str | os.PathLike] | None = None,
) -> dict:
    """Train the restorer on the shards in ``dataset_dir`` and write the selected model to ``out_checkpoint``.

    ``cfg``: see ``DEFAULTS`` (unknown keys are an error). A run killed at any
    point resumes from ``work_dir/last.pt`` when called again with the same
    trajectory settings (model, data, losses, seed, schedule); runtime settings
    (``RUNTIME_KEYS``: device, workers, threads, logging, time budget...) may
    change. A ``last.pt`` of a finished run (all steps done or time budget
    spent) is not resumed: the call starts a new run (Snakemake re-runs the rule
    when its data or settings changed). ``fingerprints`` (fingerprint ``.npy`` by camera): the
    checkpoint is selected on whole validation images scored against those of the training cameras
    (:mod:`.image_validation`); without them, on validation patches only. Returns the metrics dictionary
    stored in the checkpoint.
    """
    cfg = resolve_config(cfg)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    t = Trainer(dataset_dir, work_dir, cfg, log, fingerprints)
    log(f"training on {t.device} ({'bf16 autocast' if t.amp else 'fp32'}): {len(t.train_set)} train / "
        f"{len(t.val_set)} val patches, {t.total_steps} steps of {cfg['batch_size']}, HF loss {t.hf_kind}")
    train_log, val_log = work_dir / "train_log.csv", work_dir / "val_log.csv"
    _prepare_train_log(train_log, t.step)
    stopped_by = "steps"
    sampler = TrainBatches(len(t.train_set), cfg["batch_size"], cfg["seed"], t.step, t.total_steps)
    bar = tqdm(total=t.total_steps, initial=t.step, file=sys.stderr, disable=not cfg["progress"], unit="step",
               dynamic_ncols=True, mininterval=2.0)
    pending: list[tuple[int, dict]] = []
    start = time.perf_counter()
    elapsed0, train_time0, window = t.elapsed, t.train_time, time.perf_counter()

    def flush() -> None:
        if not pending:
            return
        values = {k: torch.stack([p[1][k].float().cpu() for p in pending if k in p[1]]).tolist()
                  for k in TRAIN_COLUMNS[2:-1] if any(k in p[1] for p in pending)}
        now = time.perf_counter()
        with open(train_log, "a", newline="") as f:
            writer = csv.writer(f)
            counters = {k: 0 for k in values}
            for step, logs in pending:
                row = [step, _fmt(step / t.steps_per_epoch)]
                for k in TRAIN_COLUMNS[2:-1]:
                    if k in logs:
                        row.append(_fmt(values[k][counters[k]]))
                        counters[k] += 1
                    else:
                        row.append("")
                writer.writerow(row + [f"{elapsed0 + now - start:.3f}"])
        last = pending[-1][1]
        bar.set_postfix(loss=f"{float(last['total']):.4f}", corr=f"{float(last.get('corr', float('nan'))):.4f}",
                        patches_s=f"{len(pending) * cfg['batch_size'] / max(1e-9, now - window):.0f}")
        pending.clear()

    def run_validation() -> None:
        row = t.validate()
        if row is None:
            return
        row["is_best"] = t.best is None or selection_key(row) > selection_key(t.best)
        t.val_rows.append(row)
        save_csv(val_log, pd.DataFrame(t.val_rows))
        images = (f"; images: PCE gain {row['pce_gain']:+.3f} (log2), largest non-match PCE plain "
                  f"{row['pce_nonmatch_plain']:.1f} restored {row['pce_nonmatch_restored']:.1f}"
                  if "pce_gain" in row else "")
        log(f"validation at step {t.step}: NCC plain {row['ncc_plain']:.5f} restored {row['ncc_restored']:.5f} "
            f"(gain {row['gain']:+.5f}); non-match plain {row['nonmatch_plain']:+.5f} restored "
            f"{row['nonmatch_restored']:+.5f}{images}{' [best]' if row['is_best'] else ''}")
        if row["is_best"]:
            t.best = row
            save_checkpoint(work_dir / "best.pt", model_payload(t.G, **t.metadata(selected=row)))

    if len(t.val_set) == 0:
        log(f"{t.dataset_dir}: no validation examples: nothing selects a checkpoint, the last step's model is kept; "
            "give the val split a fraction (dataset.fractions) for a validated model")
        save_csv(val_log, pd.DataFrame(columns=VAL_COLUMNS))
    if t.step == 0 and not t.val_rows:
        run_validation()  # the identity map (plain residual) is the reference every later model must beat
    loader = t.loader(t.train_set, sampler)
    step_start = time.perf_counter()
    for batch in loader:
        logs = t.train_step(batch, t.step)
        t.step += 1
        pending.append((t.step, logs))
        bar.update(1)
        done = t.step >= t.total_steps
        if t.step % cfg["log_every"] == 0 or done:
            flush()
            window = time.perf_counter()
        t.train_time += time.perf_counter() - step_start
        t.elapsed = elapsed0 + time.perf_counter() - start
        over_budget = cfg["time_budget_s"] is not None and t.elapsed >= cfg["time_budget_s"]
        if t.step % cfg["val_every"] == 0 or done or over_budget:
            flush()
            run_validation()
        if t.step % cfg["checkpoint_every"] == 0 or done or over_budget:
            flush()
            t.elapsed = elapsed0 + time.perf_counter() - start
            t.save_last()
            log(f"checkpoint saved at step {t.step}")
        if over_budget and not done:
            stopped_by = "time_budget"
            break
        step_start = time.perf_counter()
    flush()
    bar.close()

    steps_this_run = t.step - sampler.start
    time_this_run = t.train_time - train_time0
    metrics = {
        "steps_done": t.step, "total_steps": t.total_steps, "stopped_by": stopped_by,
        "time_budget_s": cfg["time_budget_s"], "elapsed_s": t.elapsed, "train_time_s": t.train_time,
        "patches_per_s": steps_this_run * cfg["batch_size"] / time_this_run if time_this_run > 0 else None,
        "final": t.val_rows[-1] if t.val_rows else None, "best": t.best,
        "selected_step": t.best["step"] if t.best else t.step,
    }
    if t.best is not None:
        selected = load_checkpoint(work_dir / "best.pt")
        payload = {**selected, "metrics": metrics}
    else:
        payload = model_payload(t.G, **t.metadata(metrics=metrics))
    save_checkpoint(out_checkpoint, payload)
    t.finished = True  # marked only once the output exists: a run killed before this point resumes, not restarts
    t.save_last()
    log(f"wrote {out_checkpoint}: step {metrics['selected_step']} of {t.step} selected ({stopped_by})")
    return metrics
