# Evaluation: restored residuals of held-out images, scores of the three methods, metrics.


rule restore:
    input:
        develop=evaluated_batch_tables("develop"),
        residuals=evaluated_batch_tables("residual"),
        checkpoint=MODEL or f"{RESULTS}/model/restorer.pt",
        fingerprints=FINGERPRINTS,
    output:
        table=str(PATHS.restore_table("{camera}")),
    log:
        f"{LOGS}/restore/{{camera}}.log",
    benchmark:
        f"{BENCH}/restore/{{camera}}.tsv"
    conda:
        "../../envs/spnrestore.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        roles=lambda wildcards: ROLES[wildcards.camera],
        qualities=QUALITIES,
        drive=DRIVE,
        cameras=CAMERAS,
        sigma=config["spn"]["sigma"],
    script:
        "../scripts/restore.py"


rule evaluation:
    input:
        restored=[str(PATHS.restore_table(camera)) for camera in EVALUATED_CAMERAS],
        scores=f"{RESULTS}/spn/scores.csv",
    output:
        scores=f"{RESULTS}/evaluation/scores.csv",
        metrics=report(
            f"{RESULTS}/evaluation/metrics.csv",
            caption="../report/metrics.rst",
            category="Evaluation",
        ),
    log:
        f"{LOGS}/evaluation.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        qualities=QUALITIES,
        threshold=config["spn"]["pce_threshold"],
    script:
        "../scripts/evaluation.py"


rule results:
    input:
        metrics=f"{RESULTS}/evaluation/metrics.csv",
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
    output:
        roc=report(
            expand(f"{RESULTS}/evaluation/plots/roc_{{subset}}.png", subset=SUBSETS),
            caption="../report/roc.rst",
            category="Evaluation",
        ),
        pce=report(
            expand(f"{RESULTS}/evaluation/plots/pce_{{subset}}.png", subset=SUBSETS),
            caption="../report/pce.rst",
            category="Evaluation",
        ),
        crops=report(
            f"{RESULTS}/evaluation/plots/residual_crops.png",
            caption="../report/crops.rst",
            category="Evaluation",
        ),
    log:
        f"{LOGS}/plots.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        drive=DRIVE,
        threshold=config["spn"]["pce_threshold"],
        subsets=SUBSETS,
    script:
        "../scripts/plots.py"
