"""Run the workflow in a subprocess on a generated drive (helpers for the end-to-end tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Appended to every run's ``--config`` (Snakemake merges it into the run's own ``train`` settings): a model trained
#: in a test is bounded by its steps only, never by the CPU time budget (one hour by default), so that no test's
#: outcome depends on the machine's speed or load. Left out where a test sets the budget itself.
FIXED_STEPS = "train={settings: {cpu_time_budget_s: null}}"


def fixed_steps(config: tuple[str, ...]) -> tuple[str, ...]:
    """``config`` with :data:`FIXED_STEPS` appended, unless it names ``cpu_time_budget_s`` itself."""
    return tuple(config) if any("cpu_time_budget_s" in entry for entry in config) else (*config, FIXED_STEPS)


def run_snakemake(workdir: Path, drive: Path, *args: str, config: tuple[str, ...] = (), check: bool = True):
    """``snakemake -s Snakefile -d workdir`` on ``drive``; returns the CompletedProcess (stdout+stderr)."""
    cmd = snakemake_command(workdir, drive, *args, config=config)
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    proc.output = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({' '.join(cmd)}):\n{proc.output[-6000:]}")
    return proc


def pending_by_rule(output: str) -> dict[str, int]:
    """Job counts per rule from the 'Job stats' table of a dry-run."""
    counts = {}
    table = output.split("Job stats:", 1)[-1]
    for name, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE):
        if name != "total":
            counts[name] = int(count)
    return counts


def snakemake_command(workdir: Path, drive: Path, *args: str, config: tuple[str, ...] = ()) -> list[str]:
    """The command line of :func:`run_snakemake` (to start it in the background): 2 cores (so 2 training threads)
    and training bounded by its steps (:func:`fixed_steps`)."""
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2",
            *args, "--config", f"external_drive={drive}", f"results_dir={workdir / 'results'}", *fixed_steps(config)]


def start_snakemake(workdir: Path, drive: Path, *args: str, config: tuple[str, ...] = (), log: Path,
                    env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start snakemake in its own process group (``os.killpg(proc.pid, ...)`` reaches its jobs too);
    stdout and stderr go to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(snakemake_command(workdir, drive, *args, config=config), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def group_members(pgid: int) -> list[int]:
    """Process ids still alive in process group ``pgid`` (Linux /proc; zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members
