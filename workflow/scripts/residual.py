"""Noise residuals of one batch's JPEGs at every quality (rule residual)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.spn import residual_batch  # noqa: E402

residual_batch(
    develop_table=smk.input.develop,
    drive=smk.params.drive,
    qualities=smk.params.qualities,
    sigma=smk.params.sigma,
    table=smk.output.table,
    storage=smk.config["storage"],  # not a param: changing it rewrites nothing already written
)
