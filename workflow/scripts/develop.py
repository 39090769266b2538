"""Develop (RAW) or load (JPEG, TIFF, PNG) one batch of originals and write their JPEG copies (rule develop)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.develop import develop_batch  # noqa: E402

develop_batch(
    images=smk.params.images,
    drive=smk.params.drive,
    qualities=smk.params.qualities,
    develop_settings=smk.params.develop,
    subsampling=smk.params.subsampling,
    on_bad_image=smk.params.on_bad_image,
    sigma=smk.params.sigma,
    table=smk.output.table,
    storage=smk.config["storage"],  # not a param: changing it rewrites nothing already written
    cameras=smk.params.cameras,
    scores_table=smk.output.scores,
    keep_original=smk.params.keep_original,
)
