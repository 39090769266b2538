"""The data set's manifest over all splits (rule dataset_manifest)."""

from pathlib import Path

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.dataset import write_manifest  # noqa: E402

manifest = write_manifest(Path(smk.output.manifest).parent, ["train", "val"])
log(manifest.groupby(["split", "camera"]).size().to_string())
