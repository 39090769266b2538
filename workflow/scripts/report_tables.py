"""The report's tables and summary page as HTML, shown inline by `snakemake --report` (rule report_tables)."""

from spnrestore.jobs import start_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
start_job(smk)

from spnrestore.stages.report import write_report_tables  # noqa: E402

write_report_tables(
    out=dict(smk.output.items()),
    identification_csv=smk.input.identification,
    manifest_csv=smk.input.manifest,
    skipped_csv=smk.input.skipped,
    threshold=smk.params.threshold,
    qualities=smk.params.qualities,
    drive=smk.params.drive,
    metrics_csv=smk.input.get("metrics"),
    checkpoint=smk.input.get("checkpoint"),
    reused=smk.params.reused,
    plan=smk.params.plan,
    train_log=smk.input.get("train_log"),
    val_log=smk.input.get("val_log"),
    gains_csv=smk.input.get("gains"),
    calibrations=dict(zip(smk.params.cameras, smk.input.get("calibrations") or [])),
)
