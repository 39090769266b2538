"""Figures of the evaluation: ROC curves, PCE distributions, residual crops (rule plots)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.plots import write_plots  # noqa: E402

write_plots(
    scores_csv=smk.input.scores,
    drive=smk.params.drive,
    subsets=smk.params.subsets,
    threshold=smk.params.threshold,
    roc_out=smk.output.roc,
    pce_out=smk.output.pce,
    crops_out=smk.output.crops,
    checkpoint=smk.input.checkpoint,
    sigma=smk.params.sigma,
    storage=smk.config["storage"],
    manifest_csv=smk.input.manifest,
    develop_settings=smk.params.develop,
)
