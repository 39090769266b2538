"""Train the restoration model (rule train): CUDA when present, else CPU; resumes a killed run."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.model.train import train  # noqa: E402

metrics = train(
    dataset_dir=smk.params.dataset,
    out_checkpoint=smk.output.checkpoint,
    work_dir=smk.params.work,
    cfg={**smk.params.settings, "threads": smk.threads},
    log=log,
)
log(f"final metrics: {metrics}")
