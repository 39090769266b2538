"""Write the drive manifest and the skipped report (rule manifest)."""

import logging

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)
logger = logging.getLogger("spnrestore.workflow.manifest")

from spnrestore.stages.manifest import write_manifest  # noqa: E402

table, report = write_manifest(smk.input.tables, smk.params.discovery_skipped, smk.output.manifest, smk.output.skipped,
                               smk.params.plan_notes)
logger.info(f"{len(table)} originals, {int((table['status'] == 'ok').sum())} usable; {len(report)} skipped entries")
for row in report.itertuples():
    logger.warning(f"skipped ({row.stage}): {row.path}: {row.reason}")
