"""The training configuration: schema defaults, validation messages, no torch while Snakemake plans, and the
import direction training -> whole-image pass (never training -> inference)."""

import subprocess
import sys

import pytest
import torch

from spnrestore.errors import ConfigError
from spnrestore.model.device import pick_device
from spnrestore.model.losses import LossWeights
from spnrestore.model.networks import Discriminator, GeneratorConfig
from spnrestore.model.train_config import TRAINING_SCHEMA_PATH, defaults, resolve_config, runtime_keys

# The defaults and runtime keys as model/train.py wrote them out by hand before the schema held them.
OLD_DEFAULTS = {
    "steps": 20000, "epochs": None, "batch_size": 32, "lr": 2e-4, "lr_d": 2e-4, "warmup_steps": 200,
    "min_lr_fraction": 0.1, "betas": [0.9, 0.99], "betas_d": [0.5, 0.999], "weight_decay": 0.0, "grad_clip": 1.0,
    "loss_weights": {"corr": 1.0, "lf": 0.1, "hf": 0.05, "adv": 0.01}, "adversarial": "lsgan", "adv_start_step": 1000,
    "model": {"width": 32, "max_width": 128, "depth": 3, "blocks": 2, "hourglass": 2, "hourglass_depth": 2,
              "q_embed": 64, "filter_bins": 10},
    "discriminator": {"width": 64, "layers": 3}, "augment": True, "seed": 0, "checkpoint_every": 1000,
    "val_every": None, "val_batches": None, "log_every": 10, "nonmatch_tolerance_se": 2.0,
    "val_images_per_camera": 4, "val_image_crop": 1024, "nonmatch_pce_margin": 0.25, "pce_threshold": 60.0,
    "device": "auto", "bf16": True, "channels_last": True, "compile": False, "num_workers": 4, "threads": None,
    "vgg_weights": None, "vgg_sha256": "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    "vgg_layers": ["relu1_2", "relu2_2"], "filter_examples": 20000, "time_budget_s": None, "progress": True,
}
OLD_RUNTIME_KEYS = {"device", "bf16", "channels_last", "compile", "num_workers", "threads", "progress", "log_every",
                    "checkpoint_every", "val_every", "val_batches", "time_budget_s", "vgg_weights",
                    "val_images_per_camera", "val_image_crop", "nonmatch_pce_margin", "pce_threshold"}


# Added since: a CPU time budget (one hour) so that a run without a GPU ends in a bounded, stated time; a start
# from another model (init, e.g. the shipped one); the quantisation-aware input (off unless asked for); the
# synthetic-sensor stream of pretraining (ignored on a drive) and a decay that may end with the time budget
# (off unless asked for).
NEW_DEFAULTS = {"cpu_time_budget_s": 3600, "init": None, "model": {**OLD_DEFAULTS["model"], "jpeg_features": False},
                "lr_decay_over": "steps",
                "synthetic": {"patch": 128, "margin": 32, "qualities": [25, 95], "quality_step": 5,
                              "val_qualities": [30, 60, 90], "val_examples": 768, "sigma": 5.0,
                              "ranges": {}},
                "real": {"folder": None, "qualities": [30, 50, 70, 90], "patch": 128, "patches": 16, "val_every": 10,
                         "min_pce": 60.0, "exclude": [], "synthetic_share": 0.0}}
NEW_RUNTIME_KEYS = {"cpu_time_budget_s"}


def test_schema_defaults_equal_the_former_defaults():
    assert defaults() == {**OLD_DEFAULTS, **NEW_DEFAULTS}
    assert runtime_keys() == OLD_RUNTIME_KEYS | NEW_RUNTIME_KEYS
    # val_every null: checkpoint_every
    assert resolve_config(None) == {**OLD_DEFAULTS, **NEW_DEFAULTS, "val_every": 1000}
    assert resolve_config({"checkpoint_every": 7})["val_every"] == 7
    assert GeneratorConfig().as_dict() == NEW_DEFAULTS["model"] and LossWeights().as_dict() == OLD_DEFAULTS["loss_weights"]
    assert len(Discriminator().convs) == OLD_DEFAULTS["discriminator"]["layers"] + 2
    assert TRAINING_SCHEMA_PATH.is_file()


def test_nested_sections_merge_key_by_key():
    cfg = resolve_config({"model": {"width": 8}, "loss_weights": {"adv": 0.0}, "discriminator": None})
    assert cfg["model"] == {**NEW_DEFAULTS["model"], "width": 8}
    assert cfg["loss_weights"] == {**OLD_DEFAULTS["loss_weights"], "adv": 0.0}
    assert cfg["discriminator"] == OLD_DEFAULTS["discriminator"]


@pytest.mark.parametrize("cfg, message", [
    ({"stepz": 3}, r"unknown key\(s\) stepz; allowed: .*steps"),
    ({"model": {"widht": 8}}, r"unknown key\(s\) model\.widht; allowed under model: .*width"),
    ({"discriminator": {"depth": 2}}, r"unknown key\(s\) discriminator\.depth; allowed under discriminator: layers, width"),
    ({"batch_size": 0}, r"batch_size = 0 is not allowed .*integer >= 1"),
    ({"epochs": 2.0}, r"epochs = 2\.0 .*integer >= 1 or null"),
    ({"lr": "fast"}, r"lr = 'fast' .*number > 0"),
    ({"loss_weights": {"adv": -1}}, r"loss_weights\.adv = -1 .*number >= 0"),
    ({"loss_weights": {"hf": float("inf")}}, r"loss_weights\.hf = inf"),
    ({"model": {"depth": True}}, r"model\.depth = True"),
    ({"betas": [0.9, 1.0]}, r"betas\[1\] = 1\.0 .*< 1"),
    ({"adversarial": "wgan"}, r"adversarial = 'wgan' .*one of lsgan, hinge"),
    ({"device": "gpu"}, r"device = 'gpu'.*cuda:N"),
    ({"time_budget_s": 0}, r"time_budget_s = 0 .*number > 0 or null"),
    ({"cpu_time_budget_s": -1}, r"cpu_time_budget_s = -1 .*number > 0 or null \(applies only when training runs on "
                                 r"the CPU"),
    ({"model": 5}, r"model = 5 .*object"),
])
def test_bad_keys_and_values_are_refused_by_name(cfg, message):
    with pytest.raises(ConfigError, match=r"^training config: " + message):
        resolve_config(cfg)


def test_cpu_time_budget_is_a_runtime_setting_that_applies_on_the_cpu_only():
    from spnrestore.model.train import time_budget

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_config({"cpu_time_budget_s": None})["cpu_time_budget_s"] is None
    assert "cpu_time_budget_s" in runtime_keys()
    assert time_budget(resolve_config(None), cpu) == (3600.0, "cpu_time_budget_s")
    assert time_budget(resolve_config(None), cuda) == (None, None)
    assert time_budget(resolve_config({"time_budget_s": 600}), cpu) == (600.0, "time_budget_s")
    assert time_budget(resolve_config({"time_budget_s": 7200}), cpu) == (3600.0, "cpu_time_budget_s")
    assert time_budget(resolve_config({"time_budget_s": 7200}), cuda) == (7200.0, "time_budget_s")
    assert time_budget(resolve_config({"cpu_time_budget_s": None}), cpu) == (None, None)


def test_a_checkpoints_model_config_is_checked_by_the_same_schema():
    with pytest.raises(ConfigError, match=r"^m\.pt: model_config: width = 0 is not allowed"):
        GeneratorConfig.from_dict({"width": 0}, "m.pt: model_config")
    assert GeneratorConfig.from_dict({"width": 8}) == GeneratorConfig(width=8)


def test_training_config_imports_without_torch():
    code = ("import sys, spnrestore.model.train_config as c; c.resolve_config({'steps': 5}); "
            "assert 'torch' not in sys.modules and 'tqdm' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_training_never_imports_inference():
    code = ("import sys, spnrestore.model.train, spnrestore.model.validation; "
            "assert 'spnrestore.model.inference' not in sys.modules, 'training imported inference'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_device_choice():
    assert pick_device("auto") == pick_device(None) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device = 'tpu'"):
        pick_device("tpu", key="--device")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="training config: device = 'cuda'.*no CUDA device"):
            pick_device("cuda", key="training config: device")


def test_the_demo_trains_a_fixed_number_of_steps_with_a_cheap_validation(project_root, tmp_path):
    """The demo's training (train.settings, then demo_train, as the workflow merges them) has no time budget on
    any device, so its selected model and every figure depend on the data, seed and steps only, never on the
    machine's speed or load; its whole-image validation restores each crop in one tile."""
    import inspect

    from spnrestore.config import default_config
    from spnrestore.model.train import time_budget
    from spnrestore.model.whole_image import restore_image

    config = default_config()
    cfg = resolve_config({**config["train"]["settings"], **config["demo_train"]})
    assert time_budget(cfg, torch.device("cpu")) == time_budget(cfg, torch.device("cuda")) == (None, None)
    assert cfg["epochs"] is None and cfg["steps"] == config["demo_train"]["steps"]
    assert cfg["val_image_crop"] <= inspect.signature(restore_image).parameters["tile"].default
