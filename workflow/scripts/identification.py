"""All scores in one table, and the identification summary per camera and quality (rule identification)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.stages.identification import write_identification  # noqa: E402

summary = write_identification(smk.input.tables, smk.params.threshold, smk.output.scores, smk.output.summary, log)
log(summary.to_string(index=False))
