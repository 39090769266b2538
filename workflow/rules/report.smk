# The pages of `snakemake --report` that are tables: the summary (the landing page includes it), and the
# identification, metrics, skipped files and training summary shown inline rather than only as downloads.


rule report_tables:
    input:
        **(
            {
                "metrics": f"{RESULTS}/evaluation/metrics.csv",
                "gains": f"{RESULTS}/evaluation/gains.csv",
                "checkpoint": MODEL,
                "calibrations": (
                    [str(PATHS.calibration(camera)) for camera in CAMERAS]
                    if CALIBRATE
                    else []
                ),
            }
            if MODEL
            else {}
        ),
        **(
            {
                "train_log": f"{RESULTS}/model/train_log.csv",
                "val_log": f"{RESULTS}/model/val_log.csv",
            }
            if PLAN.trainable
            else {}
        ),
        identification=f"{RESULTS}/spn/identification.csv",
        manifest=f"{RESULTS}/manifest.csv",
        skipped=f"{RESULTS}/skipped.csv",
    output:
        **(
            {
                "metrics": report(
                    f"{RESULTS}/report/metrics.html",
                    caption="../report/metrics.rst",
                    category="Restoration",
                    subcategory="Tables",
                    labels={
                        "table": "metrics per subset, camera, quality and method",
                        "shown as": "table",
                    },
                )
            }
            if MODEL
            else {}
        ),
        **(
            {
                "training": report(
                    f"{RESULTS}/report/training.html",
                    caption="../report/training_summary.rst",
                    category="Training",
                    labels={"item": "training summary", "shown as": "table"},
                )
            }
            if PLAN.trainable
            else {}
        ),
        summary=report(
            f"{RESULTS}/report/summary.html",
            caption="../report/summary.rst",
            category="1. Summary",
            labels={"page": "what was run, headline and goals"},
        ),
        identification=report(
            f"{RESULTS}/report/identification.html",
            caption="../report/identification.rst",
            category="Identification",
            labels={
                "table": "identification per camera and quality",
                "shown as": "table",
            },
        ),
        skipped=report(
            f"{RESULTS}/report/skipped.html",
            caption="../report/skipped.rst",
            category="Data",
            labels={"table": "skipped files, with the reason", "shown as": "table"},
        ),
    log:
        f"{LOGS}/report_tables.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        threshold=config["spn"]["pce_threshold"],
        qualities=QUALITIES,
        drive=str(PATHS.drive) + (" (the demo drive)" if PATHS.demo else ""),
        reused=bool(REUSED_MODEL),
        plan=PLAN.lines,
        cameras=CAMERAS,
    script:
        "../scripts/report_tables.py"
