"""Training loop of the restoration GAN: resumable, logged, checkpointed; the one engine of every training.

Entry point: :func:`train`. What it trains on is a data source (:mod:`.sources`): a drive's shards
(:class:`.sources.ShardSource`, given as the shard folder) or the synthetic-sensor stream of pretraining
(:class:`.sources.SyntheticSource`, :mod:`.pretrain`); the networks, losses, optimisers, schedule,
validation, selection, logs and resumption are the same for both. Files in ``work_dir``:

* ``last.pt`` — full training state (generator, discriminator, optimisers, step, RNG states, validation
  history) written every ``checkpoint_every`` steps and at the end; a re-run resumes from it;
* ``best.pt`` — the model selected on validation (see :func:`.validation.selection_key`);
* ``train_log.csv`` — per-step losses, learning rate, elapsed seconds;
* ``val_log.csv`` — per-validation NCC with the target for the plain and the restored residual, the gain,
  the non-match NCC (with another camera's fingerprint term) for both, and, when fingerprints are given,
  the PCE of whole validation images (:mod:`.image_validation`); then the selection flags.

The final ``out_checkpoint`` holds the selected model, its configuration, the training configuration,
the settings of the residuals it was trained on (``residual``, when given), what identifies the data (a
drive's manifest hash and folder; the synthetic stream's settings as ``pretrain``), metrics,
the HF-loss kind and versions; it loads with ``weights_only=True``. The settings and their defaults:
:mod:`.train_config`; the schedule and augmentation: :mod:`.schedule`; validation and selection:
:mod:`.validation`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd
import torch
from tqdm import tqdm

from ..atomic import save_csv
from ..errors import ConfigError, SpnRestoreError
from ..spn import settings_difference
from .checkpoint import (check_residual_settings, config_difference, load_checkpoint, load_generator, model_payload,
                         save_checkpoint)
from .device import pick_device
from .losses import GeneratorLoss, HighFrequencyLoss, LossWeights, discriminator_loss, make_hf_loss, ncc
from .networks import Discriminator, Generator, GeneratorConfig
from .schedule import augmentation_generator, cosine_factor, dihedral, lr_factor
from .signals import Interrupted, StopSignals
from .sources import DataSource, ShardSource
from .train_config import resolve_config, runtime_keys
from .validation import image_row, patch_row, selection_key

logger = logging.getLogger(__name__)

#: Steps timed (at most; fewer when ``log_every`` is smaller) before the log states how many steps the time
#: budget allows.
ESTIMATE_AFTER_STEPS = 5
#: Without a time budget, a CPU run estimated to take longer than this (seconds) is warned about.
LONG_CPU_RUN_S = 2 * 3600

TRAIN_COLUMNS = ["step", "epoch", "lr", "total", "corr", "lf", "hf", "adv", "d", "time_s"]
VAL_COLUMNS = ["step", "epoch", "n", "ncc_plain", "ncc_restored", "gain", "gain_ratio", "nonmatch_plain",
               "nonmatch_restored", "nonmatch_raise", "nonmatch_raise_se", "eligible", "is_best"]


def time_budget(cfg: Mapping, device: torch.device) -> tuple[float | None, str | None]:
    """The time budget (seconds) that applies on ``device`` and the setting it comes from: on the CPU the
    smaller of ``time_budget_s`` and ``cpu_time_budget_s`` (nulls ignored), elsewhere ``time_budget_s``;
    (None, None) without one."""
    keys = ["time_budget_s"] + (["cpu_time_budget_s"] if device.type == "cpu" else [])
    given = [(float(cfg[k]), k) for k in keys if cfg[k] is not None]
    return min(given) if given else (None, None)


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Trainer:
    """Networks, optimisers, losses and data of one training run (resumed from ``work_dir/last.pt`` when
    present); :func:`train` drives it, ``bench/bench_train.py`` times its :meth:`train_step`. ``data``: a
    :class:`.sources.DataSource`, or a drive's shard folder (:class:`.sources.ShardSource`, whose whole
    validation images are scored against ``fingerprints``)."""

    def __init__(self, data: DataSource | str | os.PathLike, work_dir, cfg: dict, *,
                 fingerprints: Mapping[str, str | os.PathLike] | None = None, residual: Mapping | None = None):
        self.cfg = cfg
        self.residual = None if residual is None else dict(residual)
        self.source = ShardSource(data, fingerprints) if isinstance(data, (str, os.PathLike)) else data
        self.work_dir = Path(work_dir)
        self.device = pick_device(cfg["device"], key="training config: device")
        self.cuda = self.device.type == "cuda"
        self.amp = self.cuda and cfg["bf16"]
        self.memory_format = torch.channels_last if self.cuda and cfg["channels_last"] else torch.contiguous_format
        self.budget = time_budget(cfg, self.device)[0]
        self.source.open(cfg, self.device)
        self.val_set = self.source.val_set
        self.image_val = self.source.image_validation((self.residual or {}).get("sigma"))
        model_cfg = GeneratorConfig(**cfg["model"])
        if self.source.patch % model_cfg.factor:
            raise ConfigError(f"training config: model downsamples by {model_cfg.factor} but the patches are "
                              f"{self.source.patch} px; use patches that are a multiple of {model_cfg.factor} "
                              "or a shallower model (depth / hourglass_depth).")
        examples = self.source.train_examples  # None: an endless stream, no epochs
        self.steps_per_epoch = None if examples is None else examples // cfg["batch_size"]
        self.total_steps = cfg["epochs"] * self.steps_per_epoch if cfg["epochs"] else cfg["steps"]
        self.weights = LossWeights(**cfg["loss_weights"])
        self.hf = make_hf_loss(cfg) if self.weights.hf else HighFrequencyLoss(None)
        self.hf_kind = self.hf.kind if self.weights.hf else "none"
        torch.manual_seed(cfg["seed"])
        self.G = Generator(model_cfg)
        self.D = Discriminator(**cfg["discriminator"])
        self.step, self.elapsed, self.train_time, self.val_rows, self.best = 0, 0.0, 0.0, [], None
        self.pending_validation = False  # the validation due at self.step was abandoned (interrupted)
        self.val_seconds: float | None = None  # duration of the last validation of this run
        self.last_path = self.work_dir / "last.pt"
        resume = load_checkpoint(self.last_path) if self.last_path.exists() else None
        if resume is not None and resume.get("finished"):
            logger.info(f"{self.last_path} is the end of a finished run: starting a new run (a run is resumed only "
                        "when it was interrupted)")
            resume = None
        self.finished = False
        if resume is None and cfg["init"]:
            self._start_from(cfg["init"], model_cfg)
        elif resume is None:
            if self.G.block_filter is not None:
                blocks = self.G.block_filter.fit(self.source.filter_batches())
                logger.info(f"block filter fitted on {blocks} blocks per JPEG quality")
            r, t = self.source.scales(self.G.prefilter)
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
            self.pending_validation = bool(resume.get("pending_validation", False))
            torch.set_rng_state(resume["rng"]["torch"])
            if self.cuda and len(resume["rng"]["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(resume["rng"]["cuda"])
            logger.info(f"resuming from {self.last_path} at step {self.step} of {self.total_steps}")
        self.g_run = torch.compile(self.G) if cfg["compile"] else self.G
        self.d_run = torch.compile(self.D) if cfg["compile"] else self.D

    def _start_from(self, init: str, model_cfg: GeneratorConfig) -> None:
        """Take the generator of checkpoint ``init`` ('pretrained': the shipped model) as step 0; the target scale
        is this data's (the loss's units), the input scale the checkpoint's (what its weights expect)."""
        from .pretrained import resolve_checkpoint

        path = resolve_checkpoint(init)
        model, payload = load_generator(path, expected_config=model_cfg)
        check_residual_settings(payload, self.residual, path)
        self.G.load_state_dict(model.state_dict())
        _, t = self.source.scales(self.G.prefilter)
        self.G.target_scale.fill_(t)
        logger.info(f"starting from {init} ({path}): its block filter and weights are step 0")

    def _check_resume(self, state: Mapping) -> None:
        runtime = runtime_keys()
        trajectory = {k: v for k, v in self.cfg.items() if k not in runtime}
        saved = {k: v for k, v in state["train_config"].items() if k not in runtime}
        problems = []
        if saved != trajectory:
            problems.append(f"training config differs ({config_difference(saved, trajectory)})")
        residual = settings_difference(state.get("residual") or {}, self.residual or {})
        if residual:
            problems.append(f"the residual settings differ ({'; '.join(residual)})")
        for key, value in self.source.identity().items():
            if state.get(key) != value:
                problems.append("the data set changed (manifest hash)" if key == "manifest_sha256" else
                                f"the data changed ({key}: {state.get(key)} (recorded) vs {value} (now))")
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
            gen = augmentation_generator(dev, self.cfg["seed"], step)
            rgb, residual, filtered, target = dihedral([rgb, residual, filtered, target], gen)
        to = lambda t: t.contiguous(memory_format=fmt)  # noqa: E731
        return to(rgb), to(residual), to(filtered), to(target), to(other), quality

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at ``step``: linear warm-up, then cosine decay to ``min_lr_fraction`` over the
        steps, or (``lr_decay_over: budget``) over the steps or the time budget, whichever ends first (progress
        by time: the run's elapsed seconds, resumed runs included, over the budget)."""
        cfg = self.cfg
        warmup, floor = cfg["warmup_steps"], cfg["min_lr_fraction"]
        if cfg["lr_decay_over"] == "budget" and self.budget is not None and step >= warmup:
            progress = (step - warmup) / max(1, self.total_steps - warmup)
            return cosine_factor(max(progress, self.elapsed / self.budget), floor)
        return lr_factor(step, self.total_steps, warmup, floor)

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        """One generator (and, once the adversarial terms are on, discriminator) update; returns detached losses."""
        cfg = self.cfg
        rgb, _, filtered, target, _, quality = self._inputs(batch, step)
        factor = self.lr_factor(step)
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
        try:
            self.G.eval()
            return self._validate()
        finally:
            self.G.train()

    def _validate(self) -> dict:
        loader = self.source.val_batches()
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
        row = {"step": self.step, "epoch": self.epoch(self.step),
               **patch_row(v, self.cfg["nonmatch_tolerance_se"])}
        if self.image_val is not None:
            row.update(image_row(self.image_val, self.G, self.device, self.cfg))
        return row

    def select(self, stop: StopSignals | None = None) -> None:
        """Validate; append the row to ``val_log.csv`` and write ``best.pt`` when it is the best so far. A
        signal (``stop``) abandons the validation, which writes nothing (:class:`Interrupted`): the validation
        stays pending and runs first when the run is resumed."""
        start = time.perf_counter()
        self.pending_validation = True
        with stop.abortable() if stop is not None else contextlib.nullcontext():
            row = self.validate()
        self.pending_validation = False
        if row is None:
            return
        self.val_seconds = time.perf_counter() - start
        guard = self.source.nonmatch_guard
        row["is_best"] = self.best is None or selection_key(row, guard) > selection_key(self.best, guard)
        self.val_rows.append(row)
        save_csv(self.work_dir / "val_log.csv", pd.DataFrame(self.val_rows))
        images = (f"; images: PCE gain {row['pce_gain']:+.3f} (log2), largest non-match PCE plain "
                  f"{row['pce_nonmatch_plain']:.1f} restored {row['pce_nonmatch_restored']:.1f}"
                  if "pce_gain" in row else "")
        logger.info(f"validation at step {self.step}: NCC plain {row['ncc_plain']:.5f} restored "
                    f"{row['ncc_restored']:.5f} (gain {row['gain']:+.5f}); non-match plain "
                    f"{row['nonmatch_plain']:+.5f} restored {row['nonmatch_restored']:+.5f}{images}"
                    f"{' [best]' if row['is_best'] else ''}")
        if row["is_best"]:
            self.best = row
            save_checkpoint(self.work_dir / "best.pt", model_payload(self.G, **self.metadata(selected=row)))

    # ----------------------------------------------------------------- helpers
    def epoch(self, step: int) -> float | None:
        """Passes over the train split at ``step`` (None for an endless stream)."""
        return None if self.steps_per_epoch is None else step / self.steps_per_epoch

    def metadata(self, **extra) -> dict:
        """Checkpoint metadata: training config, residual settings (when known), data, HF loss, versions."""
        residual = {} if self.residual is None else {"residual": copy.deepcopy(self.residual)}
        return {"train_config": copy.deepcopy(self.cfg), **residual, **copy.deepcopy(self.source.identity()),
                **copy.deepcopy(self.source.record()), "hf_loss": self.hf_kind, "seed": self.cfg["seed"],
                "torch_version": str(torch.__version__), **extra}

    def save_last(self) -> None:
        """Write the whole training state to ``last.pt`` (atomically)."""
        state = model_payload(self.G, **self.metadata(
            kind="training", discriminator_state={k: v.cpu() for k, v in self.D.state_dict().items()},
            optimizer_g=self.opt_g.state_dict(), optimizer_d=self.opt_d.state_dict(), step=self.step,
            elapsed_s=self.elapsed, train_time_s=self.train_time, val_rows=self.val_rows, best=self.best,
            finished=self.finished, pending_validation=self.pending_validation,
            rng={"torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state_all() if self.cuda else []}))
        save_checkpoint(self.last_path, state)


class TrainLog:
    """``train_log.csv`` and the progress bar. The losses of each step stay on the device until :meth:`flush`
    (one host synchronisation per write); rows are appended, so a killed run keeps every row written. At
    the start, only the complete rows up to the resumed ``step`` are kept (a killed run may have logged
    further or left a partial line). ``clock()``: elapsed seconds of the run, resumed runs included."""

    def __init__(self, path: Path, step: int, total: int, steps_per_epoch: int | None, batch_size: int,
                 clock: Callable[[], float], progress: bool):
        if step == 0 or not path.exists():
            save_csv(path, pd.DataFrame(columns=TRAIN_COLUMNS))
        else:
            frame = pd.read_csv(path, on_bad_lines="skip")
            save_csv(path, frame[frame["time_s"].notna() & (frame["step"] <= step)].drop_duplicates("step"))
        self.path, self.steps_per_epoch, self.batch_size, self.clock = path, steps_per_epoch, batch_size, clock
        self.pending: list[tuple[int, dict]] = []
        self.window = time.perf_counter()
        self.bar = tqdm(total=total, initial=step, file=sys.stderr, disable=not progress, unit="step",
                        dynamic_ncols=True, mininterval=2.0)

    def add(self, step: int, logs: dict) -> None:
        """Hold the losses of ``step`` (0-d tensors) for the next write."""
        self.pending.append((step, logs))
        self.bar.update(1)

    def flush(self) -> None:
        """Append the held steps' rows (an empty field for a term a step has not) and update the bar."""
        if not self.pending:
            return
        losses = [k for k in TRAIN_COLUMNS[2:-1] if any(k in logs for _, logs in self.pending)]
        values = {k: iter(torch.stack([logs[k].float().cpu() for _, logs in self.pending if k in logs]).tolist())
                  for k in losses}
        time_s, now = round(self.clock(), 3), time.perf_counter()
        rows = [{"step": step, "epoch": None if self.steps_per_epoch is None else step / self.steps_per_epoch,
                 **{k: next(values[k]) for k in losses if k in logs}, "time_s": time_s} for step, logs in self.pending]
        pd.DataFrame(rows, columns=TRAIN_COLUMNS).to_csv(self.path, mode="a", header=False, index=False)
        last = self.pending[-1][1]
        self.bar.set_postfix(loss=f"{float(last['total']):.4f}", corr=f"{float(last.get('corr', float('nan'))):.4f}",
                             patches_s=f"{len(self.pending) * self.batch_size / max(1e-9, now - self.window):.0f}")
        self.pending.clear()
        self.window = now

    def close(self) -> None:
        self.flush()
        self.bar.close()


def selected_model(t: Trainer) -> str:
    """The model written, and why, in words."""
    if t.best is None:
        return (f"the model of the last step ({t.step}): no validation split selects one" if len(t.val_set) == 0
                else f"the model of the last step ({t.step})")
    step = t.best["step"]
    if not t.source.nonmatch_guard:  # synthetic sensors: the mean NCC alone
        if step == 0:
            first = (f"the initial model ({t.cfg['init']}) unchanged" if t.cfg.get("init") else
                     "the block filter alone" if t.G.block_filter is not None else "the plain residual (identity map)")
            return f"{first} (no later step beat its mean NCC with the exact target on validation)"
        return (f"the U-Net at step {step} of {t.step} (the best mean NCC with the exact target on validation, "
                f"{t.best['ncc_restored']:.5f} vs {t.best['ncc_plain']:.5f} for the plain residual)")
    guard = ("widening the non-match PCE of the validation images" if "pce_gain" in t.best
             else "raising the non-match NCC of the validation patches")
    if step == 0:
        first = (f"the initial model ({t.cfg['init']}) unchanged" if t.cfg.get("init") else
                 "the block filter alone" if t.G.block_filter is not None else "the plain residual (identity map)")
        return f"{first} (no later step beat it on validation without {guard})"
    gain = (f"PCE gain {t.best['pce_gain']:+.3f} (log2)" if "pce_gain" in t.best
            else f"NCC gain {t.best['gain']:+.5f}")
    return f"the U-Net at step {step} of {t.step} (the best on validation, {gain}, without {guard})"


def _estimate(t: Trainer, cfg: Mapping, per_step: float, budget: float | None, budget_key: str | None) -> None:
    """Log how many steps the time budget allows at the measured ``per_step`` seconds (validation included
    when one was timed in this run); without a budget, how long all steps take (a warning past
    :data:`LONG_CPU_RUN_S` on the CPU)."""
    per_val = t.val_seconds / cfg["val_every"] if t.val_seconds is not None and len(t.val_set) else 0.0
    cost = per_step + per_val
    rate = f"at {per_step:.3g} s a step" + (f" (and {t.val_seconds:.3g} s a validation every {cfg['val_every']} "
                                            "steps)" if per_val else "")
    left = t.total_steps - t.step
    if budget is not None:
        allowed = min(t.total_steps, t.step + max(0, math.ceil((budget - t.elapsed) / cost)))
        if allowed < t.total_steps:
            logger.info(f"{rate} the time budget of {budget:g} s ({budget_key}) allows about {allowed} of the "
                        f"{t.total_steps} steps (ends at step ~{allowed}); the model selected on validation is "
                        "written when it ends")
            return
        logger.info(f"{rate} the {left} steps left take about {_duration(left * cost)}, within the time budget of "
                    f"{budget:g} s ({budget_key})")
        return
    logger.info(f"{rate} the {left} steps left take about {_duration(left * cost)}")
    if t.device.type == "cpu" and left * cost > LONG_CPU_RUN_S:
        logger.warning(f"warning: training on the CPU without a time budget takes about {_duration(left * cost)}; "
                       "bound it with train.settings.cpu_time_budget_s (seconds), fewer train.settings.steps or a "
                       "smaller model, or train on a GPU")


def train(
    data: DataSource | str | os.PathLike,
    out_checkpoint: str | os.PathLike,
    work_dir: str | os.PathLike,
    cfg: Mapping | None = None,
    *,
    fingerprints: Mapping[str, str | os.PathLike] | None = None,
    residual: Mapping | None = None,
) -> dict:
    """Train the restorer on ``data`` and write the selected model to ``out_checkpoint``. ``data``: a drive's
    shard folder (:class:`.sources.ShardSource`) or another :class:`.sources.DataSource` (the synthetic
    sensors of :mod:`.pretrain`).

    ``cfg``: see ``training_schema.yaml`` (:mod:`.train_config`; unknown keys are an error). A run killed at
    any point resumes from ``work_dir/last.pt`` when called again with the same
    trajectory settings (model, data, losses, seed, schedule, residual settings); runtime settings
    (``x-runtime`` in the schema: device, workers, threads, logging, time budget...) may
    change. A ``last.pt`` of a finished run (all steps done or time budget
    spent) is not resumed: the call starts a new run (Snakemake re-runs the rule
    when its data or settings changed). ``fingerprints`` (fingerprint ``.npy`` by camera): the
    checkpoint is selected on whole validation images scored against those of the training cameras
    (:mod:`.image_validation`); without them, on validation patches only. Returns the metrics dictionary
    stored in the checkpoint. ``residual``: the settings the data set's residuals were made with
    (``spn.residual_settings(sigma)``), recorded in every checkpoint so inference can refuse other residuals.

    Time budget (:func:`time_budget`): ``time_budget_s`` on every device and, on the CPU, ``cpu_time_budget_s``
    (one hour by default); the smaller applies. The log states it at the start, how many steps it allows once
    the first steps are timed, and at the end which model was selected and why. A budget makes the steps done,
    and so the selected model, depend on the machine's speed and load; without one (both null) the run is a
    function of the data, the settings and the thread count (the demo and the tests train that way).

    SIGINT and SIGTERM (Ctrl-C, Snakemake stopping the job; :class:`StopSignals`, main thread only) stop the
    run at the next step boundary (a validation under way is abandoned): ``last.pt`` is saved (a re-run resumes
    from it) and the call raises KeyboardInterrupt (SIGINT) or ``SystemExit(128 + signum)`` (SIGTERM).
    """
    cfg = resolve_config(cfg)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    with StopSignals() as stop:
        try:
            with stop.abortable():  # nothing is written before the first step: stop at once
                t = Trainer(data, work_dir, cfg, fingerprints=fingerprints, residual=residual)
        except Interrupted:
            logger.warning(f"interrupted ({stop.name}) before training started: nothing to save")
            stop.exit()
        return _run(t, out_checkpoint, cfg, stop)


def _run(t: Trainer, out_checkpoint, cfg: dict, stop: StopSignals) -> dict:
    """The training loop of :func:`train` and its output."""
    work_dir = t.work_dir
    budget, budget_key = time_budget(cfg, t.device)
    logger.info(f"training on {t.device} ({'bf16 autocast' if t.amp else 'fp32'}): {t.source.describe()}, "
                f"{t.total_steps} steps of {cfg['batch_size']}, HF loss {t.hf_kind}")
    spent = f"; {t.elapsed:.3g} s spent before this run" if t.step else ""
    speed = ("; the steps it reaches, and so the model selected, depend on the machine's speed and load (for a "
             "reproducible model, bound training by steps and set the budgets to null)")
    if budget_key == "cpu_time_budget_s":
        logger.info(f"CPU time budget {budget:g} s (train.settings.cpu_time_budget_s; null for none): training stops "
                    f"after that long, resumed runs included, and writes the model selected so far{spent}{speed}")
    elif budget is not None:
        also = (f", smaller than cpu_time_budget_s {cfg['cpu_time_budget_s']:g} s"
                if t.device.type == "cpu" and cfg["cpu_time_budget_s"] is not None else "")
        logger.info(f"time budget {budget:g} s (train.settings.time_budget_s{also}): training stops after that long, "
                    f"resumed runs included, and writes the model selected so far{spent}{speed}")
    else:
        what = "cpu_time_budget_s and time_budget_s are" if t.device.type == "cpu" else "time_budget_s is"
        logger.info(f"no time budget (train.settings.{what} null): all {t.total_steps} steps run")
    stopped_by = "steps"
    first_step = t.step
    batches = t.source.train_batches(first_step, t.total_steps)
    start = time.perf_counter()
    elapsed0, train_time0 = t.elapsed, t.train_time
    clock = lambda: elapsed0 + time.perf_counter() - start  # noqa: E731
    steps = TrainLog(work_dir / "train_log.csv", t.step, t.total_steps, t.steps_per_epoch, cfg["batch_size"], clock,
                     cfg["progress"])

    def interrupted() -> None:
        """Save the state at this step boundary to ``last.pt`` and leave as interrupted."""
        steps.close()
        t.elapsed = clock()
        t.save_last()
        logger.warning(f"interrupted ({stop.name}) at step {t.step}: {t.last_path} saved, a re-run resumes from it")
        stop.exit()

    def select() -> None:
        try:
            t.select(stop)
        except Interrupted:
            interrupted()

    if len(t.val_set) == 0:
        logger.warning(f"{t.source.where}: no validation examples: nothing selects a checkpoint, the last step's "
                       "model is kept; give the val split a fraction (dataset.fractions) for a validated model")
        save_csv(work_dir / "val_log.csv", pd.DataFrame(columns=VAL_COLUMNS))
    if (t.step == 0 and not t.val_rows) or t.pending_validation:
        select()  # at step 0 the identity map (plain residual) is the reference every later model must beat
    estimate_at = first_step + min(cfg["log_every"], ESTIMATE_AFTER_STEPS)
    estimated = t.step >= t.total_steps
    if budget is not None and t.elapsed >= budget and t.step < t.total_steps:
        stopped_by, estimated = "time_budget", True  # resumed after its budget was spent
        logger.warning(f"the time budget of {budget:g} s was spent before this run ({t.elapsed:.3g} s)")
        if t.val_rows and t.val_rows[-1]["step"] != t.step:
            select()  # the last step is validated, as when the budget runs out during a run
    else:
        step_start = time.perf_counter()
        for batch in batches:
            if stop.signum is not None:  # came while the batch loaded
                interrupted()
            logs = t.train_step(batch, t.step)
            t.step += 1
            steps.add(t.step, logs)
            done = t.step >= t.total_steps
            if t.step % cfg["log_every"] == 0 or done:
                steps.flush()
            t.train_time += time.perf_counter() - step_start
            t.elapsed = clock()
            over_budget = budget is not None and t.elapsed >= budget
            validate = t.step % cfg["val_every"] == 0 or done or over_budget
            if stop.signum is not None:
                t.pending_validation = validate and len(t.val_set) > 0
                interrupted()
            if validate:
                steps.flush()
                select()
            if t.step % cfg["checkpoint_every"] == 0 or done or over_budget:
                steps.flush()
                t.elapsed = clock()
                t.save_last()
                logger.info(f"checkpoint saved at step {t.step}")
            if not estimated and (t.step >= estimate_at or over_budget or done):
                estimated = True
                _estimate(t, cfg, (t.train_time - train_time0) / (t.step - first_step), budget, budget_key)
            if stop.signum is not None:
                interrupted()
            if over_budget and not done:
                stopped_by = "time_budget"
                break
            step_start = time.perf_counter()
    if stop.signum is not None:
        interrupted()
    steps.close()

    steps_this_run = t.step - first_step
    time_this_run = t.train_time - train_time0
    selected = selected_model(t)
    metrics = {
        "steps_done": t.step, "total_steps": t.total_steps, "stopped_by": stopped_by,
        "time_budget_s": budget, "time_budget_key": budget_key, "device": str(t.device),
        "device_name": torch.cuda.get_device_name(t.device) if t.cuda else "cpu",
        "examples_seen": t.step * cfg["batch_size"],
        "elapsed_s": t.elapsed, "train_time_s": t.train_time,
        "patches_per_s": steps_this_run * cfg["batch_size"] / time_this_run if time_this_run > 0 else None,
        "final": t.val_rows[-1] if t.val_rows else None, "best": t.best,
        "selected_step": t.best["step"] if t.best else t.step, "selected": selected,
    }
    if t.best is not None:
        payload = {**load_checkpoint(work_dir / "best.pt"), "metrics": metrics}
    else:
        payload = model_payload(t.G, **t.metadata(metrics=metrics))
    save_checkpoint(out_checkpoint, payload)
    t.finished = True  # marked only once the output exists: a run killed before this point resumes, not restarts
    t.save_last()
    how = (f"stopped by the time budget of {budget:g} s ({budget_key}) after {t.step} of {t.total_steps} steps"
           if stopped_by == "time_budget" else f"all {t.total_steps} steps done")
    logger.info(f"selected: {selected}; {how}")
    logger.info(f"wrote {out_checkpoint}: step {metrics['selected_step']} of {t.step} selected ({stopped_by})")
    return metrics
