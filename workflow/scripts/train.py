"""Train the restoration model (rule train): CUDA when present, else CPU; resumes a killed run."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from pathlib import Path  # noqa: E402

from spnrestore.atomic import write_bytes  # noqa: E402
from spnrestore.model.train import train  # noqa: E402

metrics = train(
    dataset_dir=smk.params.dataset,
    out_checkpoint=smk.output.checkpoint,
    work_dir=smk.params.work,
    cfg={**smk.params.settings, "threads": smk.threads},
    log=log,
    fingerprints=smk.params.fingerprints,
)
log(f"final metrics: {metrics}")
# The declared logs are copies: Snakemake deletes a rule's outputs before re-running it, and the ones in the
# work folder must survive for a killed run to resume with its whole history.
for name in ("train_log", "val_log"):
    write_bytes(smk.output[name], (Path(smk.params.work) / f"{name}.csv").read_bytes())
