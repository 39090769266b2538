"""Write the drive manifest and the skipped report (rule manifest)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(smk)

from spnrestore.stages.manifest import write_manifest  # noqa: E402

table, report = write_manifest(smk.input.tables, smk.params.discovery_skipped, smk.output.manifest, smk.output.skipped,
                               smk.params.plan_notes)
log(f"{len(table)} originals, {int((table['status'] == 'ok').sum())} usable; {len(report)} skipped entries")
for row in report.itertuples():
    log(f"skipped ({row.stage}): {row.path}: {row.reason}")
