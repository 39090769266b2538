"""profiles/slurm: its site settings, and the workflow through a real single-node SLURM.

The end-to-end tests start SLURM with tests/cluster/start_slurm.sh (root; installs
slurm-wlm and munge with apt-get when missing) and skip where it cannot run. They run
the workflow on a tiny generated drive once locally and once with the SLURM profile,
check from SLURM's own records (scontrol, the job completion log) that every job
went through sbatch, and compare the outputs of both runs.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, sha256_tree, without_shims
from spnrestore.demo import make_demo_drive

CLUSTER = ROOT / "tests" / "cluster"
PROFILE = ROOT / "profiles" / "slurm"
STATE = Path(os.environ.get("SPNRESTORE_SLURM_DIR", "/tmp/spnrestore-slurm"))
DRIVE = dict(cameras=2, images_per_camera=8, height=128, width=192, seed=5)
# A few seconds per job (one batch per camera on top of these settings).
TINY_CONFIG = CLUSTER / "tiny_workflow.yaml"
# Every stage, the evaluation (restore, which asks for a GPU too, and calibrate) included.
TARGETS = ("manifest", "identification", "train", "evaluation")
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
SITE_VARIABLES = ("PARTITION", "ACCOUNT", "GPU_PARTITION", "GPU_FLAG", "GPU_MODEL", "JOBS", "CORES", "STATUS_COMMAND")


def parse_profile(monkeypatch, **settings: str) -> dict:
    """The profile as Snakemake reads it, with SPNRESTORE_SLURM_<KEY> set from ``settings``."""
    from snakemake.profiles import ProfileConfigFileParser

    for name in SITE_VARIABLES:
        monkeypatch.delenv(f"SPNRESTORE_SLURM_{name}", raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(f"SPNRESTORE_SLURM_{name.upper()}", value)
    with open(PROFILE / "config.yaml") as stream:
        return dict(ProfileConfigFileParser().parse(stream))


def workflow_rules() -> dict[str, str]:
    """Name -> body of every rule under workflow/rules."""
    rules = {}
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        rules.update(re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", path.read_text(), re.MULTILINE))
    return rules


def gpu_rules() -> set[str]:
    """Rules under workflow/rules that declare ``gpu=1`` in their resources."""
    return {name for name, body in workflow_rules().items() if re.search(r"\bgpu\s*=\s*1\b", body)}


def test_slurm_profile_defaults(monkeypatch):
    profile = parse_profile(monkeypatch)
    assert profile["executor"] == "slurm" and profile["jobs"] == "100" and profile["cores"] == "8"
    assert profile["slurm-status-command"] == "squeue" and profile["slurm-no-account"] == "True"
    assert profile["rerun-incomplete"] == profile["keep-going"] == "True"
    resources = dict(item.split("=", 1) for item in profile["default-resources"])
    assert int(resources["mem_mb"]) > 0 and int(resources["runtime"]) > 0
    assert not {"slurm_partition", "slurm_account"} & set(resources)
    assert all(not item.split(":", 1)[1].startswith(("gpu=", "gres=", "slurm_partition="))
               for item in profile.get("set-resources", []))


def test_slurm_profile_sizes_existing_rules(monkeypatch):
    profile = parse_profile(monkeypatch, gpu_flag="gres")
    sized = {item.split(":", 1)[0] for item in profile["set-resources"]}
    assert "develop" in sized and sized <= set(workflow_rules()), sorted(sized - set(workflow_rules()))


def test_slurm_profile_takes_site_settings_of_the_environment(monkeypatch):
    profile = parse_profile(monkeypatch, partition="cpu-short", account="all", jobs="7", cores="2",
                            status_command="sacct", gpu_flag="gres", gpu_model="a100", gpu_partition="gpu")
    assert profile["jobs"] == "7" and profile["cores"] == "2" and profile["slurm-status-command"] == "sacct"
    assert "slurm-no-account" not in profile
    # quoted, so that a name such as "all" stays a string when Snakemake evaluates the resource
    assert {"slurm_partition='cpu-short'", "slurm_account='all'"} <= set(profile["default-resources"])
    train = [item.split(":", 1)[1] for item in profile["set-resources"] if item.startswith("train:")]
    assert sorted(train) == ["gpu=0", "gres='gpu:a100:1'", "slurm_partition='gpu'"]
    profile = parse_profile(monkeypatch, gpu_model="h100", partition="cpu")
    train = [item.split(":", 1)[1] for item in profile["set-resources"] if item.startswith("train:")]
    assert sorted(train) == ["gpu_model='h100'", "slurm_partition='cpu'"]


def test_slurm_profile_rejects_unknown_gpu_flag(monkeypatch):
    from configargparse import ConfigFileParserException

    with pytest.raises(ConfigFileParserException, match="SPNRESTORE_SLURM_GPU_FLAG='gpu'.*gpus or gres"):
        parse_profile(monkeypatch, gpu_flag="gpu")


def test_slurm_profile_lists_every_gpu_rule(monkeypatch):
    rules = gpu_rules()
    if not rules:
        pytest.skip("no rule under workflow/rules asks for a GPU (resources: gpu=1) yet")
    profile = parse_profile(monkeypatch, gpu_flag="gres")
    mapped = {item.split(":", 1)[0] for item in profile["set-resources"] if ":gres=" in item}
    assert rules <= mapped, f"add {sorted(rules - mapped)} to GPU_RULES in profiles/slurm/config.yaml"


def test_slurm_resources_from_benchmark_files(tmp_path):
    """bench/slurm_resources.py: largest job per rule, per-image scaling of batches, factors, headroom."""
    spec = importlib.util.spec_from_file_location("slurm_resources", ROOT / "bench" / "slurm_resources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    jobs = {"develop/CamA/b0000.tsv": (30.0, 500.0, 3), "develop/CamA/b0001.tsv": (20.0, 700.0, 1),
            "fingerprint/CamA.tsv": (15.0, 2000.0, None), "train.tsv": (1.0, 90.0, None)}
    for name, (seconds, rss, images) in jobs.items():
        path = tmp_path / "benchmarks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:{seconds:.0f}\t{rss}\t0\t0\t0\t0\t0\t0\t0\n")
        if images:
            table = tmp_path / "batches" / "develop" / "CamA" / path.name.replace(".tsv", ".csv")
            table.parent.mkdir(parents=True, exist_ok=True)
            table.write_text("camera,image\n" + "".join(f"CamA,I{i}\n" for i in range(images)))
    bench = module.read_benchmarks(tmp_path)
    assert sorted(bench["rule"]) == ["develop", "develop", "fingerprint", "train"]
    table = module.suggest(bench, 150, {"fingerprint": 12}, 1.5, 2.0, 5).set_index("rule")
    # develop: 20 s per image (the 1-image batch) x 150 images x 2 = 100 min; 700 MB x 1.5
    assert table.loc["develop", ["mem_mb", "runtime"]].tolist() == [1100, 100]
    assert table.loc["fingerprint", ["mem_mb", "runtime"]].tolist() == [3000, 6]  # 15 s x 12 x 2
    assert table.loc["train", "runtime"] == 5 and bool(table.loc["train", "short"])  # the floor; 1 s job
    with pytest.raises(SystemExit, match="no benchmark files"):
        module.read_benchmarks(tmp_path / "elsewhere")


HANG_S = 1800  # seconds before a SLURM run counts as hung (no wall-clock limit that load can trip)


def snakemake(workdir: Path, drive: Path, *args: str, env: dict | None = None) -> str:
    """Run TARGETS on ``drive`` with TINY_CONFIG; return the output (stdout + stderr), fail with its tail."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args,
           "--configfile", str(TINY_CONFIG), "--config", f"external_drive={drive}",
           f"results_dir={workdir / 'results'}", "batches_per_camera=1", "--", *TARGETS]
    try:  # a hang guard only: alone it takes about a minute, on a loaded 2-core machine several
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env,
                              timeout=HANG_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"snakemake through SLURM did not finish in {HANG_S} s, a hang rather than load "
                    f"({' '.join(cmd)}):\n{(exc.stderr or b'')[-4000:]!r}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake failed ({' '.join(cmd)}):\n{output[-6000:]}"
    return output


def job_stats(output: str) -> Counter:
    """Job counts per rule from the 'Job stats' table Snakemake prints before running."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return Counter({name: int(n) for name, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)
                    if name != "total"})


def scontrol_job(job_id: str) -> dict[str, str]:
    """``scontrol show job -o`` of one job as a dict of its KEY=VALUE fields."""
    line = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                          check=True).stdout.strip()
    return dict(re.findall(r"(\w[\w/:]*)=(\S*)", line))


def slurm_up() -> bool:
    """Whether a SLURM controller answers here."""
    if shutil.which("scontrol") is None:
        return False
    return "is UP" in subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout


@pytest.fixture(scope="module", autouse=True)
def _real_scontrol():
    """This module uses the real SLURM tools (conftest shims ``scontrol`` away for the other tests)."""
    shimmed = os.environ["PATH"]
    os.environ["PATH"] = without_shims(shimmed)
    yield
    os.environ["PATH"] = shimmed


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node SLURM; started (and stopped afterwards) here unless it already ran."""
    was_running = slurm_up()
    proc = subprocess.run(["bash", str(CLUSTER / "start_slurm.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"no local SLURM: {(proc.stderr or proc.stdout).strip()[-1500:]}")
    yield
    if not was_running:
        subprocess.run(["bash", str(CLUSTER / "stop_slurm.sh")], capture_output=True, text=True)


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The tiny drive run locally (--cores 2) and through SLURM (profiles/slurm): paths and logs."""
    base = tmp_path_factory.mktemp("slurm")
    out = {}
    for name in ("local", "slurm"):
        drive = make_demo_drive(base / name / "drive", **DRIVE)
        workdir = base / name / "work"
        workdir.mkdir()
        out[name] = dict(drive=drive, work=workdir)
    out["local"]["log"] = snakemake(out["local"]["work"], out["local"]["drive"], "--cores", "2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPNRESTORE_SLURM_")}
    env["SPNRESTORE_SLURM_CORES"] = str(len(os.sched_getaffinity(0)))  # the node's CPUs (start_slurm.sh: nproc)
    out["slurm"]["log"] = snakemake(
        out["slurm"]["work"], out["slurm"]["drive"], "--workflow-profile", str(PROFILE),
        "--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "2", env=env)
    return out


def submitted_jobs(log: str) -> list[tuple[str, str, Path]]:
    """(rule, SLURM job id, SLURM log file) of every job the plugin submitted."""
    jobs = []
    for job_id, logfile in SUBMITTED.findall(log):
        rule = re.search(r"/rule_(\w+)/", logfile).group(1)
        jobs.append((rule, job_id, Path(logfile)))
    return jobs


@pytest.mark.slurm
@pytest.mark.slow
def test_every_job_went_through_sbatch(runs):
    log, work = runs["slurm"]["log"], runs["slurm"]["work"]
    jobs = submitted_jobs(log)
    local_rules = set(re.findall(r"^localrule (\w+):$", log, re.MULTILINE))
    expected = Counter({r: n for r, n in job_stats(runs["local"]["log"]).items() if r not in local_rules})
    assert Counter(rule for rule, _, _ in jobs) == expected and expected["develop"] == DRIVE["cameras"]
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    completions = (STATE / "jobcomp.log").read_text()
    for rule, job_id, logfile in jobs:
        job = scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", job
        assert job["JobName"] == run_id and job["Comment"].startswith(f"rule_{rule}") and job["WorkDir"] == str(work)
        assert re.search(rf"^JobId={job_id} .*JobState=COMPLETED", completions, re.MULTILINE), job_id
        assert f"rule {rule}:" in logfile.read_text()  # the job's own Snakemake ran the rule inside SLURM


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_outputs_equal_local_outputs(runs):
    images = {name: sha256_tree(runs[name]["drive"] / "Images") for name in ("local", "slurm")}
    assert images["slurm"] == images["local"]
    assert any(path.startswith("Compressed/") and path.endswith(".jpg") for path in images["local"])

    def results(run: dict) -> dict[str, bytes]:
        """Every result but benchmarks and logs, paths replaced; training logs without wall times,
        checkpoints (they hold wall times too) by name only."""
        root, out = run["work"] / "results", {}
        for path in sorted(root.rglob("*")):
            name = str(path.relative_to(root))
            if not path.is_file() or name.split("/")[0] in ("benchmarks", "logs"):
                continue
            data = path.read_bytes().replace(str(run["drive"]).encode(), b"<drive>")
            data = data.replace(str(run["work"]).encode(), b"<work>")
            if name.startswith("model/") and name.endswith(".csv"):
                data = pd.read_csv(io.BytesIO(data)).drop(columns=["time_s"], errors="ignore").to_csv().encode()
            out[name] = b"" if name.endswith(".pt") else data
        return out

    expected = results(runs["local"])
    assert results(runs["slurm"]) == expected
    assert {"manifest.csv", "spn/identification.csv", "model/restorer.pt", "model/work/val_log.csv"} <= set(expected)


@pytest.mark.slurm
@pytest.mark.slow
def test_gpu_rules_asked_sbatch_for_a_gpu(runs):
    rules = gpu_rules()
    if not rules:
        pytest.skip("no rule under workflow/rules asks for a GPU (resources: gpu=1) yet")
    jobs = [(rule, job_id) for rule, job_id, _ in submitted_jobs(runs["slurm"]["log"]) if rule in rules]
    assert {rule for rule, _ in jobs} == rules, f"every GPU rule should run for the TARGETS {TARGETS}"
    for rule, job_id in jobs:
        job = scontrol_job(job_id)
        assert job.get("TresPerJob") == "gres:gpu:1", (rule, job)
