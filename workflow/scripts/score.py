"""PCE and NCC of one batch's residuals against every camera fingerprint (rule score)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.spn import score_batch  # noqa: E402

score_batch(
    develop_table=smk.input.develop,
    original_scores=smk.input.originals,
    roles=smk.params.roles,
    qualities=smk.params.qualities,
    drive=smk.params.drive,
    cameras=smk.params.cameras,
    table=smk.output.table,
    sigma=smk.params.sigma,
    storage=smk.config["storage"],  # keep_residuals also decides the rule's inputs (workflow/rules/spn.smk)
)
