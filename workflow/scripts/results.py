"""results.md from the evaluation's metrics, with the model that restored the residuals (rule results)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.results import write_results  # noqa: E402

write_results(smk.input.metrics, smk.params.threshold, smk.output.markdown, checkpoint=smk.input.checkpoint,
              gains_csv=smk.input.gains,
              reused=smk.params.reused, plan=smk.params.plan)
