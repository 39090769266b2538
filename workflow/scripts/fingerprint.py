"""Fingerprint of one camera from its fingerprint images (rule fingerprint)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.spn import fingerprint_camera  # noqa: E402

fingerprint_camera(
    camera=smk.wildcards.camera,
    images=smk.params.images,
    develop_settings=smk.params.develop,
    sigma=smk.params.sigma,
    drive=smk.params.drive,
    table=smk.output.table,
    storage=smk.config["storage"],
    calibration=smk.params.calibration,  # not a param: changing it rewrites nothing already written
)
