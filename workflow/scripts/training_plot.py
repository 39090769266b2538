"""The training curves of the model trained on this drive (rule training_plot)."""

import logging

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)
logger = logging.getLogger("spnrestore.workflow.training_plot")

from spnrestore.figures import training_curves  # noqa: E402

logger.info(f"written {training_curves(smk.input.train_log, smk.output.training, val_log=smk.input.val_log)}")
