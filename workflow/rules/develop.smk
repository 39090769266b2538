# Development of RAW originals (developed JPEG/TIFF/PNG originals are loaded) and JPEG copies:
# one job per (camera, batch); each original is decoded once, and its residual scored against every
# fingerprint there and then (stored only when asked: KEEP_ORIGINAL_RESIDUALS).


rule develop:
    input:
        originals=batch_originals,
        fingerprints=batch_fingerprints,
    output:
        table=batch_table("develop"),
        scores=batch_table("original_score"),
    log:
        f"{LOGS}/develop/{{camera}}/{{batch}}.log",
    benchmark:
        f"{BENCH}/develop/{{camera}}/{{batch}}.tsv"
    conda:
        "../../envs/spnrestore.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        images=batch_images,
        drive=DRIVE,
        qualities=QUALITIES,
        develop=config["develop"],
        subsampling=config["jpeg"]["chroma_subsampling"],
        on_bad_image=config["on_bad_image"],
        sigma=config["spn"]["sigma"],
        cameras=CAMERAS,
        keep_original=KEEP_ORIGINAL_RESIDUALS,
    script:
        "../scripts/develop.py"


rule manifest:
    input:
        tables=all_batch_tables("develop"),
    output:
        manifest=f"{RESULTS}/manifest.csv",
        skipped=f"{RESULTS}/skipped.csv",
    log:
        f"{LOGS}/manifest.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        discovery_skipped=[vars(s) for s in SKIPPED],
        plan_notes=PLAN_NOTES,
    script:
        "../scripts/manifest.py"
