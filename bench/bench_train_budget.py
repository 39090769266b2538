"""Benchmark: what a CPU budget of minutes teaches the restorer, per training setting.

Trains the demo's model (``demo_train`` of config/config.yaml over ``train.settings``) on existing shards for
``--budget`` seconds per variant and prints, per variant, the validation rows (mean NCC with the target of
the restored residual, at Q30, and with another camera's term) at step 0 (the block filter alone) and at the
end. Shards: those of a demo run (``.demo/results/dataset``).

    python bench/bench_train_budget.py .demo/results/dataset --budget 100
    python bench/bench_train_budget.py DATASET --variants demo corr_only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spnrestore.config import default_config  # noqa: E402
from spnrestore.model.train import train  # noqa: E402

OFF = {"lf": 0.0, "hf": 0.0, "adv": 0.0}
VARIANTS = {
    "demo": {},
    "lr2e-3": {"lr": 2e-3},
    "small_aux_lr2e-3": {"loss_weights": {"lf": 0.01, "hf": 0.005, "adv": 0.001}, "lr": 2e-3},
    "corr_only": {"loss_weights": OFF},
    "corr_only_lr2e-3": {"loss_weights": OFF, "lr": 2e-3},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", help="folder with manifest.csv, train/ and val/ shards")
    ap.add_argument("--budget", type=float, default=100.0, help="seconds of training per variant")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="HF loss")
    config = default_config()
    # the demo's settings, but bounded by the budget (the demo itself trains a fixed 150 steps)
    base = {**config["train"]["settings"], **config["demo_train"], "progress": False, "threads": args.threads,
            "steps": 100000, "time_budget_s": args.budget}
    rows = []
    for name in args.variants:
        with tempfile.TemporaryDirectory() as work:
            metrics = train(args.dataset, f"{work}/model.pt", f"{work}/run", {**base, **VARIANTS[name]})
            val = pd.read_csv(f"{work}/run/val_log.csv")
        first, last = val.iloc[0], val.iloc[-1]
        rows.append({"variant": name, "steps": metrics["steps_done"], "patches/s": round(metrics["patches_per_s"]),
                     "NCC plain": first["ncc_plain"], "NCC step 0": first["ncc_restored"],
                     "NCC end": last["ncc_restored"], "Q30 step 0": first["ncc_restored_q30"],
                     "Q30 end": last["ncc_restored_q30"], "non-match plain": first["nonmatch_plain"],
                     "non-match step 0": first["nonmatch_restored"], "non-match end": last["nonmatch_restored"]})
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
