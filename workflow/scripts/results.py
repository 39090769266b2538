"""results.md from the evaluation's metrics (rule results)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.results_summary import write_results  # noqa: E402

write_results(smk.input.metrics, smk.params.threshold, smk.output.markdown, log=log)
