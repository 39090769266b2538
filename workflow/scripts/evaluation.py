"""Scores of every residual method, the metrics and the per-image gains (rule evaluation)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.stages.evaluation import write_evaluation  # noqa: E402

scores, metrics = write_evaluation(
    restored_tables=smk.input.restored,
    spn_scores=smk.input.scores,
    qualities=smk.params.qualities,
    threshold=smk.params.threshold,
    scores_out=smk.output.scores,
    metrics_out=smk.output.metrics,
    gains_out=smk.output.gains,
    log=log,
    methods=smk.params.methods,
    calibrations=dict(zip(smk.params.cameras, smk.input.calibrations)),
)
log(metrics[metrics["camera"] == "all"].to_string(index=False))
