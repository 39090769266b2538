"""All scores in one table, and the identification summary per camera and quality (rule identification)."""

import logging

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)
logger = logging.getLogger("spnrestore.workflow.identification")

from spnrestore.stages.identification import write_identification  # noqa: E402

summary = write_identification(smk.input.tables, smk.params.threshold, smk.output.scores, smk.output.summary)
logger.info(summary.to_string(index=False))
