# Sensor pattern noise: JPEG residuals, camera fingerprints, scores of every residual against every fingerprint.
# The JPEGs' residuals are stored by rule residual only when storage.keep_residuals is true; otherwise score,
# restore, shards and plots compute them from the JPEGs.


rule residual:
    input:
        develop=batch_table("develop"),
    output:
        table=batch_table("residual"),
    log:
        f"{LOGS}/residual/{{camera}}/{{batch}}.log",
    benchmark:
        f"{BENCH}/residual/{{camera}}/{{batch}}.tsv"
    conda:
        "../../envs/spnrestore.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        drive=DRIVE,
        qualities=QUALITIES,
        sigma=config["spn"]["sigma"],
    script:
        "../scripts/residual.py"


rule fingerprint:
    input:
        originals=fingerprint_originals,
    output:
        fingerprint=str(PATHS.fingerprint("{camera}")),
        calibration_set=str(PATHS.calibration_set("{camera}")),
        table=str(PATHS.fingerprint_table("{camera}")),
    log:
        f"{LOGS}/fingerprint/{{camera}}.log",
    benchmark:
        f"{BENCH}/fingerprint/{{camera}}.tsv"
    conda:
        "../../envs/spnrestore.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        images=fingerprint_records,
        develop=config["develop"],
        sigma=config["spn"]["sigma"],
        drive=DRIVE,
        calibration=config["calibration"],
    script:
        "../scripts/fingerprint.py"


rule calibrate:
    input:
        calibration_set=str(PATHS.calibration_set("{camera}")),
        fingerprints=FINGERPRINTS,
        checkpoint=DRIVE_MODEL_INPUT,
    output:
        calibration=str(PATHS.calibration("{camera}")),
    log:
        f"{LOGS}/calibrate/{{camera}}.log",
    benchmark:
        f"{BENCH}/calibrate/{{camera}}.tsv"
    conda:
        "../../envs/spnrestore.yaml"
    threads: 1
    # the models of the model methods run here too: the jobs take turns on a GPU as restore's do
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        methods=METHODS,
        qualities=QUALITIES,
        drive=DRIVE,
        cameras=CAMERAS,
        sigma=config["spn"]["sigma"],
        threshold=config["spn"]["pce_threshold"],
        calibration=config["calibration"],
        subsampling=config["jpeg"]["chroma_subsampling"],
    script:
        "../scripts/calibrate.py"


rule score:
    input:
        develop=batch_table("develop"),
        originals=batch_table("original_score"),
        residuals=[batch_table("residual")] if KEEP_RESIDUALS else [],
        fingerprints=FINGERPRINTS,
    output:
        table=batch_table("score"),
    log:
        f"{LOGS}/score/{{camera}}/{{batch}}.log",
    benchmark:
        f"{BENCH}/score/{{camera}}/{{batch}}.tsv"
    conda:
        "../../envs/spnrestore.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        roles=batch_roles,
        qualities=QUALITIES,
        drive=DRIVE,
        cameras=CAMERAS,
        sigma=config["spn"]["sigma"],
    script:
        "../scripts/score.py"


rule identification:
    input:
        tables=all_batch_tables("score"),
    output:
        scores=f"{RESULTS}/spn/scores.csv",
        summary=report(
            f"{RESULTS}/spn/identification.csv",
            caption="../report/identification.rst",
            category="Identification",
            labels={
                "table": "identification per camera and quality",
                "shown as": "CSV (download)",
            },
        ),
    log:
        f"{LOGS}/identification.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        threshold=config["spn"]["pce_threshold"],
    script:
        "../scripts/identification.py"
