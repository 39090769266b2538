# Sensor pattern noise: JPEG residuals, camera fingerprints, scores of every residual against every fingerprint.


rule residual:
    input:
        develop=f"{RESULTS}/batches/develop/{{camera}}/{{batch}}.csv",
    output:
        table=f"{RESULTS}/batches/residual/{{camera}}/{{batch}}.csv",
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
        compressed=str(PATHS.compressed),
        spn=SPN,
        qualities=QUALITIES,
        sigma=config["spn"]["sigma"],
    script:
        "../scripts/residual.py"


rule fingerprint:
    input:
        originals=fingerprint_originals,
    output:
        fingerprint=f"{SPN}/{{camera}}/fingerprint.npy",
        table=f"{RESULTS}/fingerprints/{{camera}}.csv",
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
    script:
        "../scripts/fingerprint.py"


rule score:
    input:
        develop=f"{RESULTS}/batches/develop/{{camera}}/{{batch}}.csv",
        residuals=f"{RESULTS}/batches/residual/{{camera}}/{{batch}}.csv",
        fingerprints=list(FINGERPRINTS.values()),
    output:
        table=f"{RESULTS}/batches/score/{{camera}}/{{batch}}.csv",
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
        compressed=str(PATHS.compressed),
        spn=spn_root,
        intensity=f"{RESULTS}/intensity",
        cameras=CAMERAS,
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
        ),
    log:
        f"{LOGS}/identification.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        threshold=config["spn"]["pce_threshold"],
    script:
        "../scripts/identification.py"
