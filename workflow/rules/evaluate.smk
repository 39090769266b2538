# Evaluation: restored residuals of held-out images, scores of the three methods, metrics.


rule restore:
    input:
        develop=evaluated_batch_tables("develop"),
        residuals=evaluated_batch_tables("residual"),
        checkpoint=f"{RESULTS}/model/restorer.pt",
        fingerprints=list(FINGERPRINTS.values()),
    output:
        table=f"{RESULTS}/restore/{{camera}}.csv",
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
        compressed=str(PATHS.compressed),
        spn=spn_root,
        cameras=CAMERAS,
    script:
        "../scripts/restore.py"


rule evaluation:
    input:
        restored=expand(f"{RESULTS}/restore/{{camera}}.csv", camera=EVALUATED_CAMERAS),
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
    output:
        markdown=f"{RESULTS}/evaluation/results.md",
    log:
        f"{LOGS}/results.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        threshold=config["spn"]["pce_threshold"],
    script:
        "../scripts/results.py"


rule plots:
    input:
        scores=f"{RESULTS}/evaluation/scores.csv",
        train_log=f"{RESULTS}/model/train_log.csv",
        val_log=f"{RESULTS}/model/val_log.csv",
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
        training=report(
            f"{RESULTS}/evaluation/plots/training.png",
            caption="../report/training.rst",
            category="Training",
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
        spn=SPN,
        compressed=str(PATHS.compressed),
        threshold=config["spn"]["pce_threshold"],
        subsets=SUBSETS,
    script:
        "../scripts/plots.py"
