"""Fingerprint of one camera from its fingerprint images (rule fingerprint)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.batch_spn import fingerprint_camera  # noqa: E402

fingerprint_camera(
    camera=smk.wildcards.camera,
    images=smk.params.images,
    develop_settings=smk.params.develop,
    sigma=smk.params.sigma,
    out=smk.output.fingerprint,
    table=smk.output.table,
    log=log,
)
