"""The training curves of the model trained on this drive (rule training_plot)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.figures import training_curves  # noqa: E402

log(f"written {training_curves(smk.input.train_log, smk.output.training, val_log=smk.input.val_log)}")
