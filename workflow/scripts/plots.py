"""Figures of the report: ROC curves, PCE distributions, training curves, residual crops (rule plots)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

import pandas as pd  # noqa: E402

from spnrestore import plots  # noqa: E402

scores = pd.read_csv(smk.input.scores, keep_default_na=False, dtype={"camera": str, "image": str, "fingerprint": str})
for subset, roc, pce in zip(smk.params.subsets, smk.output.roc, smk.output.pce):
    plots.roc_curves(scores, roc, subset=subset, threshold=smk.params.threshold)
    plots.pce_distributions(scores, pce, subset=subset, threshold=smk.params.threshold)
plots.training_curves(smk.input.train_log, smk.output.training, val_log=smk.input.val_log)
lowest = int(scores["quality"].min())
examples = scores[scores["match"] & (scores["method"] == "plain") & (scores["quality"] == lowest)]
examples = examples.sort_values("pce").groupby("subset").head(2)
rows = [plots.drive_crop_row(smk.params.spn, smk.params.compressed, r.camera, r.image, lowest, scores)
        for r in examples.itertuples()]
plots.residual_crops(rows, smk.output.crops)
log(f"plots written; crops of {len(rows)} images at quality {lowest}")
