"""The calibration of one camera: the method to use per quality, chosen on its own known images (rule calibrate)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.calibrate import calibrate_camera  # noqa: E402

calibrate_camera(
    camera=smk.wildcards.camera,
    drive=smk.params.drive,
    cameras=smk.params.cameras,
    methods=smk.params.methods,
    checkpoint=smk.input.checkpoint[0] if smk.input.checkpoint else None,
    qualities=smk.params.qualities,
    sigma=smk.params.sigma,
    threshold=smk.params.threshold,
    settings=smk.params.calibration,
    subsampling=smk.params.subsampling,
    out=smk.output.calibration,
)
