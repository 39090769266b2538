# Training pairs: patches of JPEG, plain residual, quality and target, in shards per split.


rule shards:
    input:
        develop=all_batch_tables("develop"),
        residuals=all_batch_tables("residual"),
        fingerprints=FINGERPRINTS,
    output:
        split=directory(f"{RESULTS}/dataset/{{split}}"),
    log:
        f"{LOGS}/shards/{{split}}.log",
    benchmark:
        f"{BENCH}/shards/{{split}}.tsv"
    wildcard_constraints:
        split="train|val",
    conda:
        "../../envs/spnrestore.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        roles=ROLES,
        qualities=QUALITIES,
        drive=DRIVE,
        cameras=CAMERAS,
        dataset=config["dataset"],
        out_dir=lambda wildcards, output: os.path.dirname(output.split),
    script:
        "../scripts/shards.py"


rule dataset_manifest:
    input:
        splits=expand(f"{RESULTS}/dataset/{{split}}", split=["train", "val"]),
    output:
        manifest=f"{RESULTS}/dataset/manifest.csv",
    log:
        f"{LOGS}/dataset_manifest.log",
    conda:
        "../../envs/spnrestore.yaml"
    script:
        "../scripts/dataset_manifest.py"
