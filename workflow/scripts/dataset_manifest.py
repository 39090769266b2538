"""The data set's manifests (rule dataset_manifest): each split's over its camera folders, and all splits'."""

from pathlib import Path

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.dataset import gather_manifests  # noqa: E402

manifest = gather_manifests(Path(smk.output.manifest).parent, smk.params.splits)
log(manifest.groupby(["split", "camera"]).size().to_string() if len(manifest) else "no examples")
