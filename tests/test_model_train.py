"""Training loop on a tiny synthetic data set: learning, logs, resume, time budget, checkpoint contents."""

import hashlib
import logging
import pickle
import re
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from spnrestore.dataset import open_shard, list_shards
from spnrestore.errors import ConfigError, SpnRestoreError
from spnrestore.log_setup import CallbackHandler, messages_to
from spnrestore.spn import residual_settings
from spnrestore.model.checkpoint import load_checkpoint, load_generator
from spnrestore.model.data import ShardDataset, TrainBatches
from spnrestore.model.networks import GeneratorConfig
from spnrestore.model.train import Trainer, _estimate, selected_model, train
from spnrestore.model.train_config import resolve_config
from spnrestore.model.vgg import VGG16Features
from shard_helpers import build_dataset
from test_dataset_shards import synthetic_examples

pytestmark = pytest.mark.filterwarnings("ignore:HF loss:UserWarning")  # no VGG file here: Haar fallback

# Bounded by steps only (no CPU time budget) and one thread: a run's outcome is a function of the data, the settings
# and the steps, whatever the machine's speed or load. Only the budget tests below set a budget.
TINY = dict(model=GeneratorConfig.tiny().as_dict(), discriminator={"width": 8, "layers": 2}, batch_size=8,
            lr=1e-3, warmup_steps=5, adv_start_step=10, checkpoint_every=20, num_workers=0, threads=1,
            progress=False, seed=3, cpu_time_budget_s=None)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    examples, prints = synthetic_examples(root / "src", cameras=3, images=4)
    build_dataset(examples, prints, root / "data", patch=32, shard_size=64, max_patches_per_image=24)
    return root / "data"


def test_dataset_batches_come_straight_from_the_shards(dataset):
    data = ShardDataset(dataset, "train")
    first = open_shard(list_shards(dataset, "train")[0])
    batch = data[[65, 0, 5]]
    assert batch["rgb"].dtype == torch.uint8 and batch["residual"].shape == (3, 1, 32, 32)
    assert np.array_equal(batch["target"][1].numpy(), first["target"][0])
    assert np.array_equal(batch["rgb"][0].numpy(), open_shard(list_shards(dataset, "train")[1])["rgb"][1])
    again = pickle.loads(pickle.dumps(data))  # as a DataLoader worker gets it: memory maps opened anew
    assert again._arrays is None and all(torch.equal(v, again[[65, 0, 5]][k]) for k, v in batch.items())
    assert batch["other_target"].dtype == torch.float32 and batch["other_target"].abs().sum() > 0


def test_batch_order_is_a_function_of_seed_and_step():
    whole = list(TrainBatches(100, 8, seed=1, start=0, stop=30))
    assert list(TrainBatches(100, 8, seed=1, start=17, stop=30)) == whole[17:]
    assert sorted(sum(whole[:12], [])) == sorted(set(sum(whole[:12], [])))  # one epoch: no repeats
    assert whole != list(TrainBatches(100, 8, seed=2, start=0, stop=30))


def test_tiny_model_learns_and_writes_logs_and_checkpoint(dataset, tmp_path):
    out = tmp_path / "model.pt"
    unfiltered = {**GeneratorConfig.tiny().as_dict(), "filter_bins": 0}  # the U-Net alone, from the identity map
    cfg = dict(TINY, model=unfiltered, steps=60, loss_weights={"adv": 0.0}, vgg_weights=str(tmp_path / "absent.pth"))
    with pytest.warns(UserWarning, match="absent.pth.*Haar"):
        metrics = train(dataset, out, tmp_path / "work", cfg)
    log = pd.read_csv(tmp_path / "work" / "train_log.csv")
    assert log["step"].tolist() == list(range(1, 61))
    assert log["corr"].iloc[-15:].mean() < log["corr"].iloc[:15].mean()
    val = pd.read_csv(tmp_path / "work" / "val_log.csv")
    assert val["step"].tolist() == [0, 20, 40, 60]
    assert {"ncc_plain", "ncc_restored", "gain", "nonmatch_plain", "nonmatch_restored", "is_best"} <= set(val)
    assert val["gain"].iloc[0] == 0 and val["gain"].iloc[-1] > 0
    payload = torch.load(out, weights_only=True)
    assert payload["hf_loss"] == "haar" and payload["seed"] == 3
    assert payload["manifest_sha256"] == hashlib.sha256((dataset / "manifest.csv").read_bytes()).hexdigest()
    assert payload["model_config"] == unfiltered
    assert payload["train_config"]["steps"] == 60 and payload["metrics"]["steps_done"] == 60
    assert payload["metrics"]["selected_step"] == payload["selected"]["step"] == val.loc[val["is_best"], "step"].iloc[-1]
    assert metrics["patches_per_s"] > 0


def test_block_filter_is_fitted_before_training_and_beats_the_plain_residual_at_step_0(dataset, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="spnrestore")
    train(dataset, tmp_path / "model.pt", tmp_path / "work", dict(TINY, steps=2))
    val = pd.read_csv(tmp_path / "work" / "val_log.csv")
    assert val["step"].iloc[0] == 0 and val["gain"].iloc[0] > 0
    assert any(m.startswith("block filter fitted on") for m in caplog.messages)
    model = load_generator(tmp_path / "model.pt")[0]
    assert model.block_filter.fitted.sum() == len(np.unique(open_shard(list_shards(dataset, "train")[0])["quality"]))


def test_vgg_weights_file_gives_the_vgg_hf_loss_in_the_metadata(dataset, tmp_path):
    torch.manual_seed(0)
    layers = ["relu1_2", "relu2_2"]
    path = tmp_path / "vgg.pth"
    torch.save({k: 0.05 * torch.randn(v.shape) for k, v in VGG16Features(layers).state_dict().items()}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cfg = dict(TINY, steps=4, vgg_weights=str(path), vgg_sha256=digest, vgg_layers=layers)
    train(dataset, tmp_path / "m.pt", tmp_path / "w", cfg)
    assert load_checkpoint(tmp_path / "m.pt")["hf_loss"] == "vgg16"
    with pytest.raises(SpnRestoreError, match="SHA-256 mismatch"):
        train(dataset, tmp_path / "m2.pt", tmp_path / "w2", dict(cfg, vgg_sha256="1" * 64))


def test_resume_after_interruption_matches_an_uninterrupted_run(dataset, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="spnrestore")
    cfg = dict(TINY, steps=40)

    class Killed(Exception):
        pass

    def kill_after_first_checkpoint(message):
        if message == "checkpoint saved at step 20":
            raise Killed

    with pytest.raises(Killed), messages_to(CallbackHandler(kill_after_first_checkpoint)):
        train(dataset, tmp_path / "a.pt", tmp_path / "a", cfg)
    assert not (tmp_path / "a.pt").exists()
    with pytest.raises(SpnRestoreError, match="cannot resume: training config differs.*lr"):
        train(dataset, tmp_path / "a.pt", tmp_path / "a", dict(cfg, lr=5e-4))
    caplog.clear()
    train(dataset, tmp_path / "a.pt", tmp_path / "a", dict(cfg, progress=True))
    assert "resuming from" in " ".join(caplog.messages) and "at step 20 of 40" in " ".join(caplog.messages)
    train(dataset, tmp_path / "b.pt", tmp_path / "b", cfg)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 40
    for key in a["model_state"]:
        torch.testing.assert_close(a["model_state"][key], b["model_state"][key], rtol=1e-5, atol=1e-6)
    for key in a["discriminator_state"]:
        torch.testing.assert_close(a["discriminator_state"][key], b["discriminator_state"][key], rtol=1e-5, atol=1e-6)
    log = pd.read_csv(tmp_path / "a" / "train_log.csv")
    assert log["step"].tolist() == list(range(1, 41))
    caplog.clear()  # a finished run is not resumed: new settings (or data) start a new run
    train(dataset, tmp_path / "a.pt", tmp_path / "a", dict(cfg, lr=5e-4, steps=4))
    assert "starting a new run" in " ".join(caplog.messages)
    assert load_checkpoint(tmp_path / "a" / "last.pt")["step"] == 4
    assert pd.read_csv(tmp_path / "a" / "train_log.csv")["step"].tolist() == [1, 2, 3, 4]


def test_a_run_bounded_by_steps_selects_the_same_model_however_slow_the_machine(dataset, tmp_path, monkeypatch):
    """No time budget: the same data, settings and steps give the same validation rows, selected step and weights
    on a machine slowed down (every step and validation takes longer, as under load)."""
    cfg = dict(TINY, steps=20, checkpoint_every=5)
    fast = train(dataset, tmp_path / "a.pt", tmp_path / "a", cfg)
    for name in ("train_step", "_validate"):
        def slowed(self, *args, _original=getattr(Trainer, name), **kwargs):
            time.sleep(0.05)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Trainer, name, slowed)
    slow = train(dataset, tmp_path / "b.pt", tmp_path / "b", cfg)
    assert fast["stopped_by"] == slow["stopped_by"] == "steps" and fast["time_budget_s"] is None
    assert fast["selected_step"] == slow["selected_step"] and fast["steps_done"] == slow["steps_done"] == 20
    val_logs = [pd.read_csv(tmp_path / run / "val_log.csv") for run in ("a", "b")]
    pd.testing.assert_frame_equal(*val_logs)
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    assert all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])


# The budget tests assert that a budget stopped the run and that the log says so, never how many steps it
# reached: that depends on the machine's speed and load (many more steps than any machine runs in 0.5 s).
def test_time_budget_stops_early_and_is_recorded(dataset, tmp_path):
    metrics = train(dataset, tmp_path / "m.pt", tmp_path / "w", dict(TINY, steps=5000, time_budget_s=0.5))
    assert metrics["stopped_by"] == "time_budget" and 0 < metrics["steps_done"] < 5000
    payload = load_checkpoint(tmp_path / "m.pt")
    assert payload["metrics"]["time_budget_s"] == 0.5 and payload["train_config"]["time_budget_s"] == 0.5


def test_cpu_time_budget_bounds_a_cpu_run_and_the_log_states_it(dataset, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="spnrestore")
    cfg = dict(TINY, steps=5000, device="cpu", cpu_time_budget_s=0.5)
    metrics = train(dataset, tmp_path / "m.pt", tmp_path / "w", cfg)
    assert metrics["stopped_by"] == "time_budget" and 0 < metrics["steps_done"] < 5000
    assert (metrics["time_budget_s"], metrics["time_budget_key"]) == (0.5, "cpu_time_budget_s")
    text = "\n".join(caplog.messages)
    assert "CPU time budget 0.5 s (train.settings.cpu_time_budget_s; null for none)" in text
    assert "the steps it reaches, and so the model selected, depend on the machine's speed and load" in text
    assert re.search(r"at \S+ s a step .*the time budget of 0.5 s \(cpu_time_budget_s\) allows about \d+ of the 5000 "
                     r"steps \(ends at step ~\d+\); the model selected on validation is written when it ends", text)
    assert re.search(r"selected: the (block filter alone|U-Net at step \d+ of \d+) .*; stopped by the time budget of "
                     r"0.5 s \(cpu_time_budget_s\) after \d+ of 5000 steps", text)
    stored = load_checkpoint(tmp_path / "m.pt")["metrics"]
    assert isinstance(stored["selected"], str) and stored["selected"] == metrics["selected"]
    assert stored["selected"] in text


def test_time_budget_s_applies_on_the_cpu_when_smaller_and_the_cpu_budget_can_be_switched_off(dataset, tmp_path,
                                                                                               caplog):
    caplog.set_level(logging.INFO, logger="spnrestore")
    cfg = dict(TINY, steps=5000, device="cpu", time_budget_s=0.5, cpu_time_budget_s=3600)
    metrics = train(dataset, tmp_path / "m.pt", tmp_path / "w", cfg)
    assert (metrics["time_budget_s"], metrics["time_budget_key"]) == (0.5, "time_budget_s")
    text = "\n".join(caplog.messages)
    assert "time budget 0.5 s (train.settings.time_budget_s, smaller than cpu_time_budget_s 3600 s)" in text
    caplog.clear()
    cfg = dict(TINY, steps=3, device="cpu", cpu_time_budget_s=None)
    metrics = train(dataset, tmp_path / "m2.pt", tmp_path / "w2", cfg)
    assert metrics["stopped_by"] == "steps" and metrics["time_budget_s"] is None
    assert ("no time budget (train.settings.cpu_time_budget_s and time_budget_s are null): all 3 steps run"
            in "\n".join(caplog.messages))


def test_a_long_cpu_run_without_a_budget_is_warned_about_with_the_fix(caplog):
    caplog.set_level(logging.INFO, logger="spnrestore")
    t = SimpleNamespace(val_seconds=None, val_set=[], total_steps=20000, step=5, elapsed=60.0,
                        device=torch.device("cpu"))
    _estimate(t, {"val_every": 1000}, 11.0, None, None)
    assert caplog.messages[0] == "at 11 s a step the 19995 steps left take about 61.1 h"
    assert caplog.records[1].levelno == logging.WARNING
    assert caplog.messages[1].startswith("warning: training on the CPU without a time budget takes about 61.1 h; "
                                         "bound it with train.settings.cpu_time_budget_s")
    caplog.clear()
    t.val_seconds, t.val_set = 100.0, [0]
    _estimate(t, {"val_every": 1000}, 11.0, 3600.0, "cpu_time_budget_s")
    assert caplog.messages == ["at 11 s a step (and 100 s a validation every 1000 steps) the time budget of 3600 s "
                               "(cpu_time_budget_s) allows about 324 of the 20000 steps (ends at step ~324); the model "
                               "selected on validation is written when it ends"]


def test_the_selected_model_is_named_in_words():
    t = SimpleNamespace(step=60, val_set=[0], best={"step": 0, "pce_gain": 0.0}, cfg={},
                        G=SimpleNamespace(block_filter=object()), source=SimpleNamespace(nonmatch_guard=True))
    assert selected_model(t) == ("the block filter alone (no later step beat it on validation without widening "
                                 "the non-match PCE of the validation images)")
    t.best = {"step": 40, "gain": 0.01}
    assert selected_model(t).startswith("the U-Net at step 40 of 60 (the best on validation, NCC gain +0.01000")


def test_training_can_start_from_the_shipped_model(dataset, tmp_path, caplog):
    """init: pretrained takes the shipped generator (filter, weights, input scale) as step 0; a model setting that
    differs from the checkpoint's is refused naming the difference."""
    caplog.set_level(logging.INFO, logger="spnrestore")
    from spnrestore.model.pretrained import pretrained_checkpoint

    shipped, _ = load_generator(pretrained_checkpoint())
    cfg = dict(TINY, model=shipped.config.as_dict(), init="pretrained", steps=2, batch_size=4)
    train(dataset, tmp_path / "m.pt", tmp_path / "w", cfg)
    assert any(m.startswith("starting from pretrained") for m in caplog.messages)
    val = pd.read_csv(tmp_path / "w" / "val_log.csv")
    assert list(val["step"])[0] == 0
    model = load_generator(tmp_path / "m.pt")[0]
    assert torch.equal(model.block_filter.weights, shipped.block_filter.weights)
    assert float(model.residual_scale) == float(shipped.residual_scale)
    with pytest.raises(SpnRestoreError, match="another model configuration"):
        train(dataset, tmp_path / "m2.pt", tmp_path / "w2", dict(TINY, init="pretrained", steps=2))


def test_empty_train_split_says_why_and_what_to_change(tmp_path):
    examples, prints = synthetic_examples(tmp_path / "src", cameras=2, images=2)
    examples["split"] = "val"
    build_dataset(examples, prints, tmp_path / "data", patch=32, shard_size=64, max_patches_per_image=24)
    with pytest.raises(SpnRestoreError, match=r"the train split has no examples: no image has the role train .*"
                                              r"dataset\.patch_rule.*spn\.fingerprint_images.*model\.checkpoint: PATH"):
        train(tmp_path / "data", tmp_path / "m.pt", tmp_path / "w", dict(TINY, steps=2))


def test_configuration_errors(dataset, tmp_path):
    with pytest.raises(ConfigError, match="unknown key.*stepz"):
        resolve_config({"stepz": 3})
    with pytest.raises(ConfigError, match="batch_size"):
        resolve_config({"batch_size": 0})
    with pytest.raises(ConfigError, match="downsamples by 64.*32 px"):
        train(dataset, tmp_path / "m.pt", tmp_path / "w", dict(TINY, model={"depth": 4}))
    with pytest.raises(ConfigError, match="only .* examples"):
        train(dataset, tmp_path / "m.pt", tmp_path / "w2", dict(TINY, batch_size=10_000))


def test_checkpoints_record_the_residual_settings_and_a_resume_with_others_is_refused(dataset, tmp_path):
    cfg, trained = dict(TINY, steps=4, checkpoint_every=2), residual_settings(5.0)

    class Killed(Exception):
        pass

    def kill_at_first_checkpoint(message):
        if message == "checkpoint saved at step 2":
            raise Killed

    with pytest.raises(Killed), messages_to(CallbackHandler(kill_at_first_checkpoint)):
        train(dataset, tmp_path / "m.pt", tmp_path / "w", cfg, residual=trained)
    with pytest.raises(SpnRestoreError, match=r"cannot resume: the residual settings differ \(sigma: 5\.0 \(recorded\) "
                                              r"vs 3\.0 \(now\)\)"):
        train(dataset, tmp_path / "m.pt", tmp_path / "w", cfg, residual=residual_settings(3.0))
    train(dataset, tmp_path / "m.pt", tmp_path / "w", cfg, residual=trained)
    for path in (tmp_path / "m.pt", tmp_path / "w" / "last.pt", tmp_path / "w" / "best.pt"):
        assert load_checkpoint(path)["residual"] == trained
