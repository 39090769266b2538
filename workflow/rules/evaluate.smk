# Evaluation: every residual method of the held-out images (spnrestore.methods), their scores, metrics.


rule restore:
    input:
        develop=evaluated_batch_tables("develop"),
        residuals=evaluated_batch_tables("residual") if KEEP_RESIDUALS else [],
        checkpoint=DRIVE_MODEL_INPUT,
        fingerprints=FINGERPRINTS,
    output:
        table=str(PATHS.restore_table("{camera}")),
    log:
        f"{LOGS}/restore/{{camera}}.log",
    benchmark:
        f"{BENCH}/restore/{{camera}}.tsv"
    conda:
        "../../envs/spnrestore.yaml"
    # The model in the main thread (on a CPU with all the job's threads); the next JPEGs' residuals and the
    # last ones' scores in the job's threads (common.smk restore_threads: 4 where the jobs take turns on the
    # GPU, else the camera's share of the cores, at most 4; the JPEGs read ahead take memory: 6000 MB then).
    threads: restore_threads
    resources:
        gpu=1,
        mem_mb=lambda wildcards, threads: 6000 if threads > 1 else 4000,
        runtime=120,
    params:
        roles=lambda wildcards: ROLES[wildcards.camera],
        qualities=QUALITIES,
        drive=DRIVE,
        cameras=CAMERAS,
        sigma=config["spn"]["sigma"],
        methods=METHODS,
    script:
        "../scripts/restore.py"


rule evaluation:
    input:
        restored=[str(PATHS.restore_table(camera)) for camera in EVALUATED_CAMERAS],
        scores=f"{RESULTS}/spn/scores.csv",
        calibrations=(
            [str(PATHS.calibration(camera)) for camera in CAMERAS] if CALIBRATE else []
        ),
    output:
        scores=f"{RESULTS}/evaluation/scores.csv",
        metrics=report(
            f"{RESULTS}/evaluation/metrics.csv",
            caption="../report/metrics.rst",
            category="Restoration",
            subcategory="Tables",
            labels={
                "table": "metrics per subset, camera, quality and method",
                "shown as": "CSV (download)",
            },
        ),
        gains=report(
            f"{RESULTS}/evaluation/gains.csv",
            caption="../report/gains.rst",
            category="Restoration",
            subcategory="Tables",
            labels={
                "table": "match PCE gain per image and quality (do no harm)",
                "shown as": "CSV (download)",
            },
        ),
    log:
        f"{LOGS}/evaluation.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        qualities=QUALITIES,
        threshold=config["spn"]["pce_threshold"],
        methods=METHODS,
        cameras=CAMERAS,
    script:
        "../scripts/evaluation.py"


rule results:
    input:
        metrics=f"{RESULTS}/evaluation/metrics.csv",
        gains=f"{RESULTS}/evaluation/gains.csv",
        checkpoint=MODEL or f"{RESULTS}/model/restorer.pt",
    output:
        markdown=f"{RESULTS}/evaluation/results.md",
    log:
        f"{LOGS}/results.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        threshold=config["spn"]["pce_threshold"],
        reused=bool(REUSED_MODEL),
        plan=PLAN.lines,
    script:
        "../scripts/results.py"


rule training_plot:
    input:
        train_log=f"{RESULTS}/model/train_log.csv",
        val_log=f"{RESULTS}/model/val_log.csv",
    output:
        training=report(
            f"{RESULTS}/evaluation/plots/training.png",
            caption="../report/training.rst",
            category="Training",
            labels={"item": "training and validation curves", "shown as": "figure"},
        ),
    log:
        f"{LOGS}/training_plot.log",
    conda:
        "../../envs/spnrestore.yaml"
    script:
        "../scripts/training_plot.py"


rule plots:
    input:
        scores=f"{RESULTS}/evaluation/scores.csv",
        checkpoint=MODEL or f"{RESULTS}/model/restorer.pt",
        manifest=f"{RESULTS}/manifest.csv",
    output:
        # one report item per subset, each labelled with its subset (the script gets the lists as before)
        roc=[
            report(
                f"{RESULTS}/evaluation/plots/roc_{subset}.png",
                caption="../report/roc.rst",
                category="Restoration",
                subcategory="Figures",
                labels={"figure": "ROC curves per quality", "subset": subset},
            )
            for subset in SUBSETS
        ],
        pce=[
            report(
                f"{RESULTS}/evaluation/plots/pce_{subset}.png",
                caption="../report/pce.rst",
                category="Restoration",
                subcategory="Figures",
                labels={"figure": "PCE histograms per quality", "subset": subset},
            )
            for subset in SUBSETS
        ],
        crops=report(
            f"{RESULTS}/evaluation/plots/residual_crops.png",
            caption="../report/crops.rst",
            category="Restoration",
            subcategory="Figures",
            labels={
                "figure": "residual crops at the lowest quality",
                "subset": "all",
            },
        ),
    log:
        f"{LOGS}/plots.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        drive=DRIVE,
        threshold=config["spn"]["pce_threshold"],
        subsets=SUBSETS,
        sigma=config["spn"]["sigma"],
        develop=config["develop"],
    script:
        "../scripts/plots.py"
