"""Restore and score the residuals of one camera's held-out images (rule restore)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.evaluate import restore_camera  # noqa: E402

restore_camera(
    develop_tables=smk.input.develop,
    roles=smk.params.roles,
    qualities=smk.params.qualities,
    compressed=smk.params.compressed,
    spn=smk.params.spn,
    checkpoint=smk.input.checkpoint,
    fingerprints=dict(zip(smk.params.cameras, smk.input.fingerprints)),
    table=smk.output.table,
    log=log,
)
