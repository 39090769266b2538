"""Train the restoration model (rule train): CUDA when present, else CPU; resumes a killed run."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.train import train_restorer  # noqa: E402

train_restorer(
    dataset_dir=smk.params.dataset,
    checkpoint=smk.output.checkpoint,
    work_dir=smk.params.work,
    settings={**smk.params.settings, "threads": smk.threads},
    drive=smk.params.drive,
    cameras=smk.params.cameras,
    sigma=smk.params.sigma,
    logs_out={"train_log": smk.output.train_log, "val_log": smk.output.val_log},
)
