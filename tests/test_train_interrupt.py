"""Ctrl-C and SIGTERM stop training at a step boundary with a resumable ``last.pt`` (issue "Real drives", 3).

Training runs in a child process (``python -c`` calling :func:`spnrestore.model.train.train`) in a session of its
own; the signal goes to its whole process group, as a Ctrl-C in a terminal does. The child stops at a chosen
point and tells the test so by a file: it waits there until the signal has been sent, so nothing depends on how
fast the machine is. Every wait has a generous timeout that names what it waited for; nothing asserts a time.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from spnrestore.model.checkpoint import load_checkpoint
from spnrestore.model.train import train
from shard_helpers import build_dataset
from test_dataset_shards import synthetic_examples
from test_model_train import TINY

pytestmark = pytest.mark.filterwarnings("ignore:HF loss:UserWarning")  # no VGG file here: Haar fallback

CFG = dict(TINY, steps=60, checkpoint_every=5, val_every=10, device="cpu")
STARTUP_TIMEOUT_S = 300  # import torch, fit the block filter, first steps: slow on a busy machine
STOP_TIMEOUT_S = 300  # a tiny step and a save (about a second); generous so that a busy machine never fails it

# The child trains with CFG (and DataLoader workers when asked). PAUSE names where it waits for the signal:
# "checkpoint" in the log handler, at the message of the first checkpoint (between steps), "validation" inside
# the validation of step 10 (a validation under way is abandoned). It writes "reached" there and waits until "go"
# exists.
CHILD = r'''
import json, os, sys, time
from pathlib import Path
from spnrestore.log_setup import CallbackHandler, add_handler
from spnrestore.model import train as train_module

data, out, work, control, pause, cfg = sys.argv[1:7]
control, cfg = Path(control), json.loads(cfg)
log_file = open(control / "log.txt", "a", buffering=1)


def wait_for_go():
    (control / "reached").touch()
    deadline = time.monotonic() + 300
    while not (control / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def log(message):
    log_file.write(message + "\n")
    if pause == "checkpoint" and message == "checkpoint saved at step 5":
        wait_for_go()


if pause == "validation":
    validate = train_module.Trainer._validate

    def paused_validate(self):
        if self.step == 10:
            wait_for_go()
        return validate(self)

    train_module.Trainer._validate = paused_validate
add_handler(CallbackHandler(log))
train_module.train(data, out, work, cfg)
'''


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    examples, prints = synthetic_examples(root / "src", cameras=3, images=4)
    build_dataset(examples, prints, root / "data", patch=32, shard_size=64, max_patches_per_image=24)
    return root / "data"


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    """An uninterrupted run with the same settings: its last.pt and val_log.csv."""
    work = tmp_path_factory.mktemp("reference")
    train(dataset, work / "model.pt", work, CFG)
    return work


def wait_until(condition, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"training ended (rc {proc.returncode}) before {what}:\n{proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.05)


def interrupted_run(dataset: Path, tmp: Path, pause: str, signum: int, workers: int) -> tuple[int, str, Path]:
    """Train in a child until it reaches ``pause``, send ``signum`` to its process group, let it go on; return
    its exit status, its log and its work folder."""
    control, work = tmp / "control", tmp / "work"
    control.mkdir()
    cfg = dict(CFG, num_workers=workers)
    args = [sys.executable, "-c", CHILD, str(dataset), str(tmp / "model.pt"), str(work), str(control), pause,
            json.dumps(cfg)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        wait_until((control / "reached").exists, proc, STARTUP_TIMEOUT_S, f"pause at the {pause}")
        os.killpg(proc.pid, signum)
        (control / "go").touch()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"training still running {STOP_TIMEOUT_S} s after {signal.Signals(signum).name}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, (control / "log.txt").read_text(), work


def assert_resumes_and_equals_the_reference(dataset, work: Path, step: int, reference: Path, caplog) -> None:
    last = load_checkpoint(work / "last.pt")
    assert last["step"] == step and not last["finished"]
    assert pd.read_csv(work / "train_log.csv")["step"].max() == step
    caplog.set_level(logging.INFO, logger="spnrestore")
    metrics = train(dataset, work / "model.pt", work, CFG)
    assert f"resuming from {work / 'last.pt'} at step {step} of 60" in caplog.messages
    assert metrics["steps_done"] == 60 and metrics["stopped_by"] == "steps"
    assert load_checkpoint(work / "last.pt")["finished"]
    assert pd.read_csv(work / "train_log.csv")["step"].tolist() == list(range(1, 61))
    ours, theirs = pd.read_csv(work / "val_log.csv"), pd.read_csv(reference / "val_log.csv")
    assert ours["step"].tolist() == theirs["step"].tolist() == [0, 10, 20, 30, 40, 50, 60]
    a, b = load_checkpoint(work / "last.pt"), load_checkpoint(reference / "last.pt")
    for key in a["model_state"]:
        torch.testing.assert_close(a["model_state"][key], b["model_state"][key], rtol=1e-5, atol=1e-6)


def test_sigterm_between_steps_saves_last_pt_exits_143_and_a_rerun_resumes(dataset, reference, tmp_path, caplog):
    rc, log, work = interrupted_run(dataset, tmp_path, "checkpoint", signal.SIGTERM, workers=1)
    assert rc == 128 + signal.SIGTERM, log
    stopped = [line for line in log.splitlines() if line.startswith("interrupted")]
    assert stopped == [f"interrupted (SIGTERM) at step 5: {work / 'last.pt'} saved, a re-run resumes from it"]
    assert_resumes_and_equals_the_reference(dataset, work, 5, reference, caplog)


def test_ctrl_c_during_validation_abandons_it_and_the_resumed_run_validates_first(dataset, reference, tmp_path,
                                                                                   caplog):
    rc, log, work = interrupted_run(dataset, tmp_path, "validation", signal.SIGINT, workers=0)
    assert rc in (-signal.SIGINT, 128 + signal.SIGINT, 1), log  # KeyboardInterrupt: Python ends by SIGINT
    assert "validation at step 10" not in log
    assert f"interrupted (SIGINT) at step 10: {work / 'last.pt'} saved, a re-run resumes from it" in log
    assert load_checkpoint(work / "last.pt")["pending_validation"]
    assert_resumes_and_equals_the_reference(dataset, work, 10, reference, caplog)


def test_signal_handlers_are_restored_after_training(dataset, tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    train(dataset, tmp_path / "m.pt", tmp_path / "w", dict(CFG, steps=2))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
