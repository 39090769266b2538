# Training of the restoration GAN: the last build stage (GPU when present, else CPU).


rule train:
    input:
        manifest=f"{RESULTS}/dataset/manifest.csv",
        shards=SHARD_FOLDERS,
        fingerprints=FINGERPRINTS,
    output:
        checkpoint=f"{RESULTS}/model/restorer.pt",
        train_log=report(
            f"{RESULTS}/model/train_log.csv",
            caption="../report/train_log.rst",
            category="Training",
            labels={"item": "per-step training log", "shown as": "CSV (download)"},
        ),
        val_log=f"{RESULTS}/model/val_log.csv",
    log:
        f"{LOGS}/train.log",
    benchmark:
        f"{BENCH}/train.tsv"
    conda:
        "../../envs/spnrestore.yaml"
    threads: 8
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=24 * 60,
    params:
        settings=TRAIN_SETTINGS,
        drive=DRIVE,
        cameras=CAMERAS,
        sigma=config["spn"]["sigma"],
        dataset=lambda wildcards, input: os.path.dirname(input.manifest),
        work=lambda wildcards, output: os.path.join(
            os.path.dirname(output.train_log), "work"
        ),
    script:
        "../scripts/train.py"
