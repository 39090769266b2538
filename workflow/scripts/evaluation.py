"""Scores of every residual method, the metrics and the per-image gains (rule evaluation)."""

import logging

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)
logger = logging.getLogger("spnrestore.workflow.evaluation")

from spnrestore.stages.evaluation import write_evaluation  # noqa: E402

scores, metrics = write_evaluation(
    restored_tables=smk.input.restored,
    spn_scores=smk.input.scores,
    qualities=smk.params.qualities,
    threshold=smk.params.threshold,
    scores_out=smk.output.scores,
    metrics_out=smk.output.metrics,
    gains_out=smk.output.gains,
    methods=smk.params.methods,
    calibrations=dict(zip(smk.params.cameras, smk.input.calibrations)),
)
logger.info(metrics[metrics["camera"] == "all"].to_string(index=False))
