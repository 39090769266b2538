"""Training-pair shards of one camera of one split (rule shards)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.shards import write_split_shards  # noqa: E402

write_split_shards(
    split=smk.wildcards.split,
    camera=smk.wildcards.camera,
    develop_tables=smk.input.develop,
    roles=smk.params.roles,
    qualities=smk.params.qualities,
    drive=smk.params.drive,
    cameras=smk.params.cameras,
    settings=smk.params.dataset,
    out_dir=smk.params.out_dir,
    storage=smk.config["storage"],  # keep_residuals also decides the rule's inputs (workflow/rules/dataset.smk)
    sigma=smk.params.sigma,
)
