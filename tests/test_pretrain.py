"""Synthetic sensors (spnrestore.dataset.synthetic), the quantisation-aware generator input, the pretraining
loop and the model shipped with the package."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch

import pandas as pd
import yaml
from torch.utils.data import DataLoader

from spnrestore.cli import main as cli_main
from spnrestore.config import load_yaml
from spnrestore.dataset.synthetic import SensorRanges, dead_leaves, example_seed, random_prnu, synthetic_photo
from spnrestore.errors import ConfigError, SpnRestoreError
from spnrestore.jpeg import IJG_TABLES, ZIGZAG, encode_jpeg
from spnrestore.log_setup import CallbackHandler, messages_to
from spnrestore.model.block_filter import ZERO_BANDS, JpegFeatures, dct_matrix
from spnrestore.model.checkpoint import load_checkpoint, load_generator
from spnrestore.model.inference import load_restorer, restore_residual
from spnrestore.model.losses import ncc as ncc_torch
from spnrestore.model.networks import Generator, GeneratorConfig
from spnrestore.model.pretrain import MODEL_FILE, pretrain
from spnrestore.model.pretrained import pretrained_checkpoint, resolve_checkpoint, synthetic_checkpoint
from spnrestore.model.sources import SyntheticBatches, SyntheticSource, sensor_ranges
from spnrestore.model.train import TRAIN_COLUMNS, VAL_COLUMNS, Trainer
from spnrestore.model.train_config import parse_assignment, resolve_config, with_overrides
from spnrestore.spn import extract_residual, residual_settings
from spnrestore.spn.torch_residual import TorchResidual


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


# ------------------------------------------------------------------------------------------- the generator
def test_prnu_statistics_follow_the_ranges():
    r = SensorRanges()
    stds, lowpassed = [], 0
    for i in range(40):
        k = random_prnu(example_seed(0, 9, i), 256, 256, r)
        assert k.dtype == np.float32 and abs(float(k.mean())) < 1e-6
        stds.append(float(k.std()))
        # a low-passed PRNU has clearly less energy between neighbours than its own variance
        lowpassed += float(np.mean((k[:, 1:] - k[:, :-1]) ** 2)) < 1.5 * float(k.var())
    assert r.prnu_strength[0] * 0.999 <= min(stds) and max(stds) <= r.prnu_strength[1] * 1.001
    assert 0.3 < lowpassed / 40 < 0.9  # about prnu_blur_probability of them
    lines = random_prnu(example_seed(0, 9, 0), 512, 512, SensorRanges(prnu_lines=(0.5, 0.5), prnu_blur_probability=0))
    row_means = lines.mean(axis=1)
    assert row_means.std() > 5 * lines.std() / np.sqrt(512)  # rows share an offset: far above chance


def test_scenes_are_procedural_and_varied():
    scenes = [dead_leaves(example_seed(1, 0, i), 128, 128) for i in range(6)]
    assert all(s.shape == (128, 128, 3) and s.dtype == np.float32 and s.min() >= 0 for s in scenes)
    assert len({round(float(s.mean()), 4) for s in scenes}) == 6  # every scene differs


def test_photo_is_deterministic_per_example_and_on_the_jpeg_grid():
    a = synthetic_photo(example_seed(3, 0, 5), 192, 30)
    b = synthetic_photo(example_seed(3, 0, 5), 192, 30)
    c = synthetic_photo(example_seed(3, 0, 6), 192, 30)
    assert a[0].shape == (192, 192, 3) and a[0].dtype == np.uint8 and a[1].shape == (192, 192)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="quality 0"):
        synthetic_photo(example_seed(3, 0, 5), 192, 0)
    with pytest.raises(ValueError, match="multiple of 8"):
        synthetic_photo(example_seed(3, 0, 5), 190, 30)


def test_target_is_exactly_the_prnu_term():
    """Without PRNU the target vanishes; with it, the target is what the residual of the photo correlates with,
    and not the term of another sensor."""
    plain = SensorRanges(camera_jpeg_probability=0, denoise_probability=0, sharpen_probability=0,
                         resample_probability=0, prnu_strength=(0.02, 0.02))
    none = SensorRanges(prnu_strength=(1e-12, 1e-12))
    _, target, _ = synthetic_photo(example_seed(4, 0, 0), 256, 95, none)
    assert float(np.abs(target).max()) < 1e-3
    own, other = [], []
    for i in range(6):
        pixels, target, _ = synthetic_photo(example_seed(4, 0, i), 256, 100, plain)
        _, another, _ = synthetic_photo(example_seed(4, 1, i), 256, 100, plain)
        w = extract_residual(pixels)
        own.append(ncc(w, target))
        other.append(ncc(w, another))
    assert min(own) > 0.05 and max(np.abs(other)) < 0.03, (own, other)


# ------------------------------------------------------------------------------------------- JPEG features
def test_jpeg_features_find_the_coefficients_the_jpeg_zeroed():
    """The zeroed share per band, recomputed from the decoded pixels, agrees with the quantisation of the
    encoder's own DCT of the same blocks (libjpeg's), and falls with the quality."""
    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.normal(128, 40, (256, 256)).astype(np.float32), (0, 0), 1.2)
    rgb = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)  # gray: luma = pixels
    features = JpegFeatures()
    d = dct_matrix().numpy().astype(np.float64)
    shares = {}
    for q in (30, 60, 90):
        decoded = cv2.imdecode(np.frombuffer(encode_jpeg(rgb, q, "444"), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        x = torch.from_numpy(decoded.copy()).permute(2, 0, 1)[None].float() / 255
        found = features(x, torch.tensor([q]))[0, :, ::8, ::8].numpy()  # (4, 32, 32), in -1..1
        blocks = rgb[..., 0].astype(np.float64).reshape(32, 8, 32, 8).transpose(0, 2, 1, 3) - 128
        coef = np.einsum("ui,abij,vj->abuv", d, blocks, d).reshape(32, 32, 64)
        zeroed = np.abs(np.rint(coef / IJG_TABLES[q - 1])) == 0
        truth = np.stack([zeroed[:, :, ZIGZAG[lo:hi]].mean(-1) for lo, hi in ZERO_BANDS]) * 2 - 1
        assert np.abs(found - truth).mean() < 0.05, q
        shares[q] = float(found.mean())
    assert shares[30] > shares[60] > shares[90]


def test_quantisation_aware_generator_starts_as_its_filter_and_loads_old_configs():
    config = GeneratorConfig.tiny()
    assert config.jpeg_features is False  # older checkpoints, which lack the key, keep their input
    model = Generator(GeneratorConfig(**{**config.as_dict(), "jpeg_features": True})).eval()
    rgb, r = torch.rand(2, 3, 64, 64), torch.randn(2, 1, 64, 64)
    q = torch.tensor([30, 90])
    out = model(rgb, r, q)
    assert out.shape == (2, 1, 64, 64)
    assert torch.allclose(out, model.prefilter(rgb, r, q) / model.residual_scale)  # untrained: the identity
    assert model.stem.in_channels == 4 + JpegFeatures.channels


# ------------------------------------------------------------------------------------------- pretraining
# Tiny runs on the synthetic stream, bounded by steps only (no time budget): their outcome is a function of the
# settings and the steps, whatever the machine's speed or load.
TINY = {"synthetic": {"patch": 64, "margin": 32, "val_examples": 12}, "steps": 3, "batch_size": 4,
        "filter_examples": 48, "val_every": 3, "checkpoint_every": 3, "num_workers": 0, "warmup_steps": 1,
        "threads": 1, "progress": False, "cpu_time_budget_s": None, "augment": False, "device": "cpu",
        "loss_weights": {"corr": 1.0, "lf": 0.0, "hf": 0.0, "adv": 0.0},
        "model": {**GeneratorConfig.tiny().as_dict(), "jpeg_features": True}}


def test_settings_are_checked_by_the_one_schema():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) synthetic\.stepz; allowed under synthetic: .*patch"):
        resolve_config({"synthetic": {"stepz": 3}})
    with pytest.raises(ConfigError, match=r"synthetic\.patch = 60"):
        resolve_config({"synthetic": {"patch": 60}})
    with pytest.raises(ConfigError, match=r"synthetic\.ranges\.iso = 'many'"):
        resolve_config({"synthetic": {"ranges": {"iso": "many"}}})
    # the generator owns the names of its ranges: one it lacks is refused, named, when the stream is made
    with pytest.raises(ConfigError, match=r"unknown key\(s\) synthetic\.ranges\.iso_max; allowed under "
                                          r"synthetic\.ranges \(spnrestore\.dataset\.synthetic\.SensorRanges\): .*iso"):
        SyntheticSource(resolve_config({"synthetic": {"ranges": {"iso_max": 3}}}))
    with pytest.raises(ConfigError, match=r"synthetic\.qualities = \[90, 30\]"):
        SyntheticSource(resolve_config({"synthetic": {"qualities": [90, 30]}}))
    cfg = resolve_config({"synthetic": {"qualities": [30, 90], "ranges": {"iso": [100, 200]}}})
    assert cfg["synthetic"]["qualities"] == [30, 90] and sensor_ranges(cfg["synthetic"]["ranges"]).iso == (100, 200)
    assert sensor_ranges(cfg["synthetic"]["ranges"]).prnu_strength == SensorRanges().prnu_strength  # not given: default


def test_the_phone_recipe_fine_tunes_the_synthetic_base_on_the_default_mix(project_root):
    """config/pretrain-phone.yaml (issue 25's phone fine-tune, not shipped: docs/model.md) is a training config of
    the one schema that starts from the synthetic base, on the generator's default mix, bounded by steps."""
    cfg = resolve_config(load_yaml(project_root / "config" / "pretrain-phone.yaml"))
    assert cfg["init"] == "pretrained-synthetic" and cfg["time_budget_s"] is None and cfg["cpu_time_budget_s"] is None
    assert cfg["model"] == load_checkpoint(synthetic_checkpoint())["model_config"]
    assert sensor_ranges(cfg["synthetic"]["ranges"]) == SensorRanges()  # phones in


def test_the_synthetic_base_recipe_is_a_training_config(project_root):
    """config/pretrain.yaml is the recipe of the shipped model's synthetic base (synthetic.pt: the model shipped
    until the real-camera fine-tune, made by the former loop)."""
    cfg = resolve_config(load_yaml(project_root / "config" / "pretrain.yaml"))
    shipped = load_checkpoint(synthetic_checkpoint())
    assert cfg["model"] == shipped["model_config"]
    old = shipped["pretrain"]  # the settings the base's run recorded (its own loop, now gone)
    assert {k: cfg["synthetic"][k] for k in ("patch", "margin", "qualities", "quality_step", "sigma", "val_examples")} == \
        {k: old[k] for k in ("patch", "margin", "qualities", "quality_step", "sigma", "val_examples")}
    assert (cfg["seed"], cfg["steps"], cfg["time_budget_s"], cfg["batch_size"], cfg["lr"], cfg["warmup_steps"],
            cfg["filter_examples"], cfg["val_every"], cfg["num_workers"]) == \
        (old["seed"], old["steps"], old["time_budget_s"], old["batch_size"], old["lr"], old["warmup_steps"],
         old["filter_examples"], old["val_every"], old["workers"])
    ranges = sensor_ranges(cfg["synthetic"]["ranges"]).as_dict()
    assert {k: ranges[k] for k in old["ranges"]} == old["ranges"]  # the shipped run's generator's draws
    # the former loop's fixed choices, now settings
    assert (cfg["betas"], cfg["weight_decay"], cfg["grad_clip"], cfg["min_lr_fraction"], cfg["lr_decay_over"],
            cfg["discriminator"], cfg["augment"]) == ([0.9, 0.99], 0.01, 1.0, 0.1, "budget", {"width": 32, "layers": 3}, False)
    assert cfg["loss_weights"] == {"corr": 1.0, "lf": 0.0, "hf": 0.0, "adv": 0.0}


def test_overrides_set_dotted_keys():
    given = {"model": {"width": 16, "depth": 2}, "lr": 1e-3}
    out = with_overrides(given, [parse_assignment("model.width=8"), parse_assignment("lr=2e-4"),
                                 parse_assignment("synthetic.ranges.iso=[100, 200]")])
    assert out == {"model": {"width": 8, "depth": 2}, "lr": 2e-4, "synthetic": {"ranges": {"iso": [100, 200]}}}
    assert given["model"]["width"] == 16  # the settings read are not changed
    with pytest.raises(ConfigError, match="--set 'lr': give KEY=VALUE"):
        parse_assignment("lr")


def test_the_stream_is_a_function_of_seed_and_step_whatever_the_workers():
    """Batch b of stream 0 is examples b x B .. (b + 1) x B - 1, however many processes make them; a resumed run
    (start > 0) gets the batches an uninterrupted one gets."""
    s = resolve_config({"synthetic": {"patch": 16, "margin": 0}})["synthetic"]

    def batches(workers, start, stop):
        data = SyntheticBatches(s, 0, SensorRanges(), 0, 3, start, stop)
        loader = DataLoader(data, batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None,
                            multiprocessing_context="spawn" if workers else None)
        return [b for b in loader]

    one, two, later = batches(0, 0, 4), batches(2, 0, 4), batches(2, 1, 4)
    for x, y in zip(one, two):
        assert all(torch.equal(x[k], y[k]) for k in x)
    for x, y in zip(one[1:], later):
        assert all(torch.equal(x[k], y[k]) for k in x)
    rng = example_seed(0, 0, 4)  # example 4: its quality (25, 30, ..., 95) drawn first, then its photo
    q = 25 + 5 * int(rng.integers(0, 15))
    rgb, target, _ = synthetic_photo(rng, 16, q)
    assert int(one[1]["quality"][1]) == q
    assert np.array_equal(one[1]["rgb"][1].numpy(), rgb) and np.array_equal(one[1]["target"][1].numpy(), target)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    calls = []
    original = Trainer.train_step

    def counted(self, batch, step):
        calls.append((type(self.source).__name__, step))
        return original(self, batch, step)

    Trainer.train_step = counted
    try:
        metrics = pretrain(out, TINY)
    finally:
        Trainer.train_step = original
    return out, metrics, calls


def test_pretrain_writes_a_loadable_restorer(tiny_run):
    out, metrics, _ = tiny_run
    assert metrics["steps_done"] == 3 and metrics["examples_seen"] == 12 and metrics["stopped_by"] == "steps"
    path = out / MODEL_FILE
    payload = load_checkpoint(path)
    assert payload["residual"] == residual_settings(5.0)
    assert payload["pretrain"]["patch"] == 64 and payload["pretrain"]["seed"] == 0
    assert payload["pretrain"]["ranges"] == SensorRanges().as_dict()  # every value used, defaults included
    assert payload["train_config"]["synthetic"]["val_examples"] == 12 and len(payload["generator_sha256"]) == 64
    assert payload["metrics"]["selected_step"] in (0, 3)
    restorer = load_restorer(resolve_checkpoint(str(path)), "cpu", residual=residual_settings(5.0))
    assert restorer.model.config.jpeg_features and restorer.model.block_filter is not None
    assert {p.name for p in out.iterdir()} >= {MODEL_FILE, "last.pt", "best.pt", "train_log.csv", "val_log.csv"}


def test_pretraining_and_drive_training_are_one_engine(tiny_run):
    """Every step of pretraining is Trainer.train_step on the synthetic source; its logs have the drive's columns;
    validation starts at step 0 (the block filter alone) and selects on the mean NCC with the exact target."""
    out, metrics, calls = tiny_run
    assert calls == [("SyntheticSource", 0), ("SyntheticSource", 1), ("SyntheticSource", 2)]
    log, val = pd.read_csv(out / "train_log.csv"), pd.read_csv(out / "val_log.csv")
    assert list(log.columns) == TRAIN_COLUMNS and log["step"].tolist() == [1, 2, 3]
    assert set(VAL_COLUMNS) <= set(val.columns) and val["step"].tolist() == [0, 3]
    assert {"ncc_restored_q30", "ncc_restored_q60", "ncc_restored_q90"} <= set(val.columns)
    best = val.loc[val["ncc_restored"].idxmax(), "step"]
    assert metrics["selected_step"] == best  # the non-match columns are logged, not used
    if best == 0:
        assert metrics["selected"].startswith("the block filter alone (no later step beat its mean NCC")


def test_pretraining_resumes_as_if_never_interrupted(tiny_run, tmp_path, caplog):
    out, _, _ = tiny_run
    cfg = dict(TINY, checkpoint_every=1)

    class Killed(Exception):
        pass

    def kill(message):
        if message == "checkpoint saved at step 2":
            raise Killed

    with pytest.raises(Killed), messages_to(CallbackHandler(kill)):
        pretrain(tmp_path, cfg)
    other = with_overrides(cfg, [("synthetic.ranges.iso", [100])])  # another stream: refused
    with pytest.raises(SpnRestoreError, match=r"cannot resume: training config differs \(synthetic: "):
        pretrain(tmp_path, other)
    caplog.set_level(logging.INFO, logger="spnrestore")
    pretrain(tmp_path, cfg)
    assert "resuming from" in " ".join(caplog.messages) and "at step 2 of 3" in " ".join(caplog.messages)
    a, b = load_checkpoint(out / "last.pt"), load_checkpoint(tmp_path / "last.pt")
    assert a["step"] == b["step"] == 3
    for key in a["model_state"]:
        torch.testing.assert_close(a["model_state"][key], b["model_state"][key], rtol=1e-5, atol=1e-6)
    assert pd.read_csv(tmp_path / "train_log.csv")["step"].tolist() == [1, 2, 3]


def test_init_from_the_shipped_model_is_step_0_on_synthetic_sensors(tmp_path, caplog):
    """init: pretrained on the synthetic source: the step-0 validation is the shipped model's mean NCC with the
    exact targets of the validation sensors, measured here independently of the engine."""
    shipped, _ = load_generator(pretrained_checkpoint())
    cfg = dict(TINY, model=shipped.config.as_dict(), init="pretrained", steps=1, val_every=1, checkpoint_every=1)
    caplog.set_level(logging.INFO, logger="spnrestore")
    pretrain(tmp_path, cfg)
    assert any(m.startswith("starting from pretrained") for m in caplog.messages)
    step0 = pd.read_csv(tmp_path / "val_log.csv").iloc[0]
    assert step0["step"] == 0
    residual = TorchResidual("cpu", sigma=5.0)
    scores, plain = [], []
    for i in range(12):
        q = (30, 60, 90)[i % 3]
        pixels, target, _ = synthetic_photo(example_seed(0, 1, i), 128, q)
        w = residual(torch.from_numpy(pixels)[None])[0, 32:96, 32:96]
        rgb = torch.from_numpy(pixels[32:96, 32:96]).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            out = shipped(rgb, w[None, None].float(), torch.tensor([q]))
        t = torch.from_numpy(target[32:96, 32:96])[None, None]
        scores.append(float(ncc_torch(out, t)))
        plain.append(float(ncc_torch(w[None, None], t)))
    assert step0["ncc_restored"] == pytest.approx(np.mean(scores), abs=1e-5)
    assert step0["ncc_plain"] == pytest.approx(np.mean(plain), abs=1e-5)
    model = load_generator(tmp_path / MODEL_FILE)[0]
    assert torch.equal(model.block_filter.weights, shipped.block_filter.weights)


def test_the_command_line_runs_a_settings_file_with_overrides(tmp_path, capsys):
    settings = tmp_path / "p.yaml"
    settings.write_text(yaml.safe_dump({**TINY, "steps": 50}))
    assert cli_main(["pretrain", "--settings", str(settings), "-o", str(tmp_path / "out"), "--steps", "2",
                     "--workers", "0", "--device", "cpu", "--set", "synthetic.val_examples=6"]) == 0
    out = capsys.readouterr().out.splitlines()  # the training's lines, as they are, on stdout
    assert out[0].startswith("synthetic sensors: 6 validation examples")
    assert any(line.startswith("training on cpu (fp32): synthetic") for line in out)
    assert out[-1].startswith(f"wrote {tmp_path / 'out' / MODEL_FILE}: step ")
    payload = load_checkpoint(tmp_path / "out" / MODEL_FILE)
    assert payload["metrics"]["steps_done"] == 2 and payload["train_config"]["synthetic"]["val_examples"] == 6
    assert cli_main(["pretrain", "--settings", str(settings), "-o", str(tmp_path / "o2"),
                     "--set", "synthetic.stepz=1"]) == 2


# ------------------------------------------------------------------------------------------- the shipped model
def test_shipped_model_loads_with_weights_only_and_restores():
    path = pretrained_checkpoint()
    assert path.is_file() and path.stat().st_size < 4_000_000
    assert resolve_checkpoint("pretrained") == str(path) and resolve_checkpoint("none") is None
    payload = load_checkpoint(path)  # weights_only=True
    assert payload["real"]["cameras"] and payload["metrics"]["steps_done"] > 0
    assert payload["residual"] == residual_settings(5.0)
    base = synthetic_checkpoint()
    assert base.is_file() and base.stat().st_size < 4_000_000 and resolve_checkpoint("pretrained-synthetic") == str(base)
    assert load_checkpoint(base)["pretrain"]["variant"]
    pixels, target, _ = synthetic_photo(example_seed(7, 5, 0), 256, 30)
    w = extract_residual(pixels)
    for model in (path, base):
        restorer = load_restorer(model, "cpu", residual=residual_settings(5.0))
        assert restorer.model.config.jpeg_features and restorer.model.block_filter is not None
        restored = restore_residual(restorer, pixels, w, 30)
        assert restored.shape == w.shape and restored.dtype == np.float32 and np.isfinite(restored).all()
        assert not np.allclose(restored, w)  # it learned something: not the identity
