"""Pretraining of the restorer on synthetic sensors (:mod:`spnrestore.dataset.synthetic`), the model shipped
with the package (:mod:`.pretrained`).

The stream never repeats a sensor: example ``i`` of stream 0 is a new camera drawn from ``[seed, 0, i]``.
Each example is a ``patch + 2 * margin`` px photo at a JPEG quality drawn from ``qualities``; its noise
residual is computed here, in batches, with the workflow's algorithm (:mod:`spnrestore.spn.torch_residual`,
on the training device), and the centre ``patch`` px of residual, pixels and exact target are kept (the margin
keeps the residual's border effects out). Then:

1. the block filter is fitted in closed form on ``filter_examples`` examples;
2. one or more generators (``variants``: name -> model size and loss weights, all fed the same batches, so
   that they compare on equal data) learn a correction on top of it with the correlation loss first
   (1 - NCC with the exact target), optionally a low-pass L1 and the adversarial term;
3. every ``val_every`` steps each is scored on a fixed validation set of other new sensors (stream 1, at
   qualities 30, 60, 90): mean NCC with the target for the plain residual, the filter alone and the model,
   and the share of examples where the model's NCC is below the filter's. The step with the best mean NCC
   is kept; a variant that never beats the filter alone keeps the filter alone (zero correction) and says so.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator, Mapping

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..dataset.synthetic import SensorRanges, example_seed, synthetic_photo
from ..errors import ConfigError
from ..spn import residual_settings
from ..spn.torch_residual import TorchResidual
from .checkpoint import model_payload, save_checkpoint
from .device import pick_device
from .losses import correlation_loss, discriminator_loss, generator_adversarial_loss, lf_loss, ncc
from .networks import Discriminator, Generator, GeneratorConfig, count_parameters
from .schedule import cosine_factor, lr_factor

VAL_QUALITIES = (30, 60, 90)


@dataclass
class PretrainSettings:
    """Everything a pretraining run depends on (recorded in the checkpoint)."""

    seed: int = 0
    patch: int = 128
    margin: int = 32
    qualities: tuple[int, int] = (25, 95)
    quality_step: int = 5
    sigma: float = 5.0
    steps: int = 20000
    time_budget_s: float | None = None
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 200
    filter_examples: int = 8000
    val_examples: int = 768
    val_every: int = 500
    workers: int = 2
    variants: dict = field(default_factory=lambda: {"small": {
        "model": {"width": 16, "max_width": 32, "depth": 2, "blocks": 1, "hourglass": 1, "hourglass_depth": 1,
                  "q_embed": 32, "jpeg_features": True},
        "loss": {"corr": 1.0, "lf": 0.0, "adv": 0.0}}})
    ranges: SensorRanges = field(default_factory=SensorRanges)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["qualities"] = list(self.qualities)
        d["ranges"] = self.ranges.as_dict()
        return d


def settings_from(mapping: Mapping | None, name: str = "pretrain settings") -> PretrainSettings:
    """:class:`PretrainSettings` from a mapping (a YAML file's contents; missing keys keep their defaults). An
    unknown key, a bad variant name or a variant without ``model`` is a ConfigError naming ``name`` and the key."""
    d = dict(mapping or {})
    known = {f.name for f in fields(PretrainSettings)}
    if unknown := sorted(set(d) - known):
        raise ConfigError(f"{name}: unknown key(s) {unknown}; known keys: {sorted(known)}.")
    if "ranges" in d:
        allowed = {f.name for f in fields(SensorRanges)}
        if unknown := sorted(set(d["ranges"] or {}) - allowed):
            raise ConfigError(f"{name}: unknown key(s) {unknown} under ranges; known keys: {sorted(allowed)}.")
        d["ranges"] = SensorRanges(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["ranges"].items()})
    if "qualities" in d:
        low, high = d["qualities"]
        if not 1 <= low <= high <= 100:
            raise ConfigError(f"{name}: qualities = {d['qualities']}: give [low, high] within 1..100.")
        d["qualities"] = (int(low), int(high))
    for variant, spec in (d.get("variants") or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", str(variant)) or "model" not in (spec or {}):
            raise ConfigError(f"{name}: variants.{variant}: a variant is named in letters, digits, '_' and '-' "
                              "and has a 'model' (sizes as in training_schema.yaml) and a 'loss' (corr, lf, adv).")
        spec.setdefault("loss", {"corr": 1.0})
    return PretrainSettings(**d)


class SyntheticStream(IterableDataset):
    """Examples ``start, start + 1, ...`` (``stop`` excluded, None: endless) of ``stream``: dicts of ``rgb``
    uint8 (S, S, 3), ``target`` float32 (S, S), ``quality``; ``quality`` given, or drawn per example from the
    settings' range. Worker ``w`` of ``n`` makes the examples ``i`` with ``i % n == w``."""

    def __init__(self, s: PretrainSettings, stream: int, start: int = 0, stop: int | None = None,
                 quality: Callable[[int], int] | None = None):
        self.s, self.stream, self.start, self.stop, self.quality = s, stream, start, stop, quality

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info else (0, 1)
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        i = self.start + w
        size = self.s.patch + 2 * self.s.margin
        while self.stop is None or i < self.stop:
            rng = example_seed(self.s.seed, self.stream, i)
            low, high = self.s.qualities
            q = self.quality(i) if self.quality else low + self.s.quality_step * int(
                rng.integers(0, (high - low) // self.s.quality_step + 1))
            rgb, target, _ = synthetic_photo(rng, size, q, self.s.ranges)
            yield {"rgb": torch.from_numpy(rgb), "target": torch.from_numpy(target), "quality": q}
            i += n


def _collate(items: list[dict]) -> dict:
    return {"rgb": torch.stack([x["rgb"] for x in items]), "target": torch.stack([x["target"] for x in items]),
            "quality": torch.tensor([x["quality"] for x in items])}


class Prepare:
    """Turns a collated batch into the training arrays on ``device``: the residual of each whole photo, then
    the centre crops (``rgb`` uint8 (B, 3, P, P), ``residual`` and ``target`` float32 (B, 1, P, P), ``quality``)."""

    def __init__(self, s: PretrainSettings, device: torch.device):
        self.residual = TorchResidual(device, sigma=s.sigma)
        self.m, self.p, self.device = s.margin, s.patch, device

    def __call__(self, batch: dict) -> dict:
        rgb = batch["rgb"].to(self.device, non_blocking=True)
        w = self.residual(rgb)
        crop = (slice(None), slice(self.m, self.m + self.p), slice(self.m, self.m + self.p))
        return {"rgb": rgb[crop].permute(0, 3, 1, 2).contiguous(), "residual": w[crop][:, None].float(),
                "target": batch["target"].to(self.device)[crop][:, None].float(),
                "quality": batch["quality"].to(self.device)}


def _batches(s: PretrainSettings, stream: int, count: int, batch: int, prepare: Prepare, workers: int,
             quality=None) -> list[dict]:
    loader = DataLoader(SyntheticStream(s, stream, 0, count, quality), batch_size=batch, collate_fn=_collate,
                        num_workers=workers)
    return [{k: v.cpu() for k, v in prepare(b).items()} for b in loader]


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model: Generator, val: list[dict], device, correction: bool = True) -> dict:
    """Mean NCC with the exact target per quality of the plain residual, the filter alone and the model
    (``correction=False``: the filter alone), and the share of examples the model scores below the filter."""
    rows = []
    for b in val:
        b = _to(b, device)
        rgb = b["rgb"].float() / 255.0
        filtered = model.prefilter(rgb, b["residual"], b["quality"])
        out = model(rgb, filtered, b["quality"], prefiltered=True) if correction else filtered
        rows.append(torch.stack([b["quality"].float(), ncc(b["residual"], b["target"]), ncc(filtered, b["target"]),
                                 ncc(out, b["target"])], 1).cpu())
    t = torch.cat(rows).numpy()
    result = {"ncc_model": float(t[:, 3].mean()), "ncc_filter": float(t[:, 2].mean()), "ncc_plain": float(t[:, 1].mean()),
              "below_filter": float((t[:, 3] < t[:, 2]).mean()), "below_plain": float((t[:, 3] < t[:, 1]).mean())}
    for q in np.unique(t[:, 0]).astype(int):
        sel = t[:, 0] == q
        result.update({f"ncc_plain_q{q}": float(t[sel, 1].mean()), f"ncc_filter_q{q}": float(t[sel, 2].mean()),
                       f"ncc_model_q{q}": float(t[sel, 3].mean())})
    return result


@dataclass
class _Variant:
    name: str
    model: Generator
    loss: dict
    opt: torch.optim.Optimizer
    critic: Discriminator | None = None
    opt_d: torch.optim.Optimizer | None = None
    best: dict = field(default_factory=dict)
    best_state: dict | None = None
    history: list = field(default_factory=list)


def _lr(s: PretrainSettings, step: int, seconds: float) -> float:
    """Linear warm-up, then a cosine decay to 0.1 x the peak over the steps or the time budget, whichever ends
    first (so that a run cut by its budget still ends at a low rate)."""
    if step < s.warmup_steps or not s.time_budget_s:
        return s.lr * lr_factor(step, s.steps, s.warmup_steps, 0.1)
    progress = max((step - s.warmup_steps) / max(1, s.steps - s.warmup_steps), seconds / s.time_budget_s)
    return s.lr * cosine_factor(progress, 0.1)


def _step(v: _Variant, b: dict, lr: float, cuda: bool) -> float:
    for g in v.opt.param_groups:
        g["lr"] = lr
    rgb = b["rgb"].float() / 255.0
    target = b["target"] / v.model.target_scale
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        filtered = v.model.prefilter(rgb, b["residual"], b["quality"])
        out = v.model(rgb, filtered, b["quality"], prefiltered=True).float()
        loss = v.loss.get("corr", 1.0) * correlation_loss(out, target)
        if v.loss.get("lf", 0.0):
            loss = loss + v.loss["lf"] * lf_loss(out, target)
        if v.critic is not None:
            r = filtered.float() / v.model.residual_scale
            loss = loss + v.loss["adv"] * generator_adversarial_loss(v.critic(rgb, r, out, b["quality"]))
    v.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(v.model.parameters(), 1.0)
    v.opt.step()
    if v.critic is not None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            r = filtered.detach().float() / v.model.residual_scale
            d = discriminator_loss(v.critic(rgb, r, target, b["quality"]), v.critic(rgb, r, out.detach(), b["quality"]))
        v.opt_d.zero_grad(set_to_none=True)
        d.backward()
        v.opt_d.step()
    return float(loss.detach())


def pretrain(out_dir: str | Path, s: PretrainSettings = PretrainSettings(), device: str | None = None,
             log: Callable[[str], None] = print) -> dict:
    """Run a pretraining; writes ``<out_dir>/<variant>.pt`` per variant and returns their summaries."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(s.seed)
    began = time.monotonic()
    prepare = Prepare(s, dev)
    log(f"device {dev}; fitting the block filter on {s.filter_examples} synthetic examples")
    fit_batches = _batches(s, 2, s.filter_examples, 256, prepare, s.workers)
    val = _batches(s, 1, s.val_examples, 64, prepare, s.workers, quality=lambda i: VAL_QUALITIES[i % 3])
    configs = {name: GeneratorConfig.from_dict(spec["model"], key=f"variants.{name}.model")
               for name, spec in s.variants.items()}
    bins = {c.filter_bins for c in configs.values()} - {0}
    if len(bins) > 1:
        raise ConfigError(f"variants: the block filters differ in filter_bins ({sorted(bins)}); use one value (or 0).")
    base = Generator(GeneratorConfig(filter_bins=bins.pop() if bins else 0))
    if base.block_filter is not None:
        base.block_filter.fit(fit_batches)
    sample = fit_batches[:8]
    target_scale = float(torch.cat([b["target"] for b in sample]).std())

    def residual_scale(model: Generator) -> float:
        return float(torch.cat([model.prefilter(b["rgb"].float() / 255, b["residual"], b["quality"]) for b in sample]).std())

    log(f"block filter fitted ({time.monotonic() - began:.0f} s); target scale {target_scale:.4g}")
    variants = []
    for name, spec in s.variants.items():
        model = Generator(configs[name])
        if model.block_filter is not None:
            model.block_filter.load_state_dict(base.block_filter.state_dict())
        model.residual_scale.fill_(residual_scale(model))
        model.target_scale.fill_(target_scale)
        model.to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=s.lr, betas=(0.9, 0.99))
        critic = Discriminator(32, 3).to(dev) if spec["loss"].get("adv", 0) else None
        opt_d = torch.optim.AdamW(critic.parameters(), lr=2e-4, betas=(0.5, 0.999)) if critic else None
        v = _Variant(name, model, dict(spec["loss"]), opt, critic, opt_d)
        v.best = {"step": 0, **evaluate(model, val, dev, correction=False)}
        v.best["ncc_model"] = max(v.best["ncc_filter"], v.best["ncc_plain"])  # to beat: the better of the two
        variants.append(v)
        log(f"{name}: {count_parameters(model):,} parameters; filter alone: mean NCC {v.best['ncc_filter']:.4f} "
            f"(plain {v.best['ncc_plain']:.4f})")
    del fit_batches, sample
    loader = DataLoader(SyntheticStream(s, 0), batch_size=s.batch_size, collate_fn=_collate,
                        num_workers=s.workers, persistent_workers=s.workers > 0, prefetch_factor=8 if s.workers else None)
    started, step, stopped_by, waited = time.monotonic(), 0, "steps", 0.0
    asked = time.monotonic()
    for batch in loader:
        waited += time.monotonic() - asked
        b = prepare(batch)
        lr = _lr(s, step, time.monotonic() - started)
        losses = {v.name: _step(v, b, lr, cuda) for v in variants}
        step += 1
        out_of_time = s.time_budget_s is not None and time.monotonic() - started > s.time_budget_s
        if step % s.val_every == 0 or step >= s.steps or out_of_time:
            for v in variants:
                v.model.eval()
                m = {"step": step, **evaluate(v.model, val, dev)}
                v.model.train()
                v.history.append({**m, "loss": losses[v.name], "seconds": time.monotonic() - started})
                if m["ncc_model"] > v.best["ncc_model"]:
                    v.best, v.best_state = m, copy.deepcopy(v.model.state_dict())
                log(f"step {step} {v.name}: loss {losses[v.name]:.4f} NCC model {m['ncc_model']:.4f} filter "
                    f"{m['ncc_filter']:.4f} below filter {m['below_filter']:.2f} "
                    f"({(time.monotonic() - started) / step * 1000:.0f} ms/step, {waited / step * 1000:.0f} waiting for data)")
        if step >= s.steps or out_of_time:
            stopped_by = "steps" if step >= s.steps else "time budget"
            break
        asked = time.monotonic()
    seconds = time.monotonic() - started
    summaries = {}
    for v in variants:
        if v.best_state is not None:
            v.model.load_state_dict(v.best_state)
        else:
            torch.nn.init.zeros_(v.model.head.weight)
            torch.nn.init.zeros_(v.model.head.bias)
        v.model.eval().cpu()
        summary = {"variant": v.name, "selected_step": v.best["step"], "steps_done": step, "stopped_by": stopped_by,
                   "train_seconds": seconds, "examples_seen": step * s.batch_size, "device": str(dev),
                   "device_name": torch.cuda.get_device_name(dev) if cuda else "cpu",
                   "parameters": count_parameters(v.model), "validation": v.best,
                   "filter_alone": v.best_state is None}
        save_checkpoint(out_dir / f"{v.name}.pt", model_payload(
            v.model, residual=residual_settings(s.sigma), pretrain=s.as_dict() | {"variant": v.name},
            metrics=summary, history=v.history))
        summaries[v.name] = summary
        log(f"{v.name}: selected step {v.best['step']} of {step} ({stopped_by}, {seconds:.0f} s): mean NCC "
            f"{v.best['ncc_model']:.4f} vs filter {v.best['ncc_filter']:.4f}"
            + (" — never beat the filter alone and the plain residual: the model is the filter alone"
               if v.best_state is None else ""))
    return summaries
