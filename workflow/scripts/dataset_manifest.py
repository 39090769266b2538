"""The data set's manifests (rule dataset_manifest): each split's over its camera folders, and all splits'."""

import logging
from pathlib import Path

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)
logger = logging.getLogger("spnrestore.workflow.dataset_manifest")

from spnrestore.dataset import gather_manifests  # noqa: E402

manifest = gather_manifests(Path(smk.output.manifest).parent, smk.params.splits)
logger.info(manifest.groupby(["split", "camera"]).size().to_string() if len(manifest) else "no examples")
