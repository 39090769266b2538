"""Compute and score the residual methods of one camera's held-out images (rule restore)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.restore import restore_camera  # noqa: E402

restore_camera(
    develop_tables=smk.input.develop,
    roles=smk.params.roles,
    qualities=smk.params.qualities,
    drive=smk.params.drive,
    cameras=smk.params.cameras,
    methods=smk.params.methods,
    checkpoint=smk.input.checkpoint[0] if smk.input.checkpoint else None,
    sigma=smk.params.sigma,
    table=smk.output.table,
    storage=smk.config["storage"],  # not a param: changing it rewrites nothing already written
    threads=smk.threads,
)
