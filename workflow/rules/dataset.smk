# Training pairs: patches of JPEG, plain residual and quality, in shards per split and camera (the targets
# are computed from the fingerprints when training reads them: spnrestore.dataset.shard_reader).
import re

# The splits of the data set, and per split the cameras with an image of that role (a held-out camera has
# none): one shards job each. A camera whose images of the split are all skipped (undeveloped, mis-sized,
# no usable patch) still gets its folder, with an empty manifest; a split with no camera has no folder and
# an empty manifest (results/dataset/<split>/manifest.csv, written by dataset_manifest).
SHARD_SPLITS = ["train", "val"]
SHARD_CAMERAS = {
    split: [c for c in CAMERAS if split in ROLES[c].values()] for split in SHARD_SPLITS
}
SHARD_FOLDERS = [
    f"{RESULTS}/dataset/{split}/{camera}"
    for split in SHARD_SPLITS
    for camera in SHARD_CAMERAS[split]
]
# The batches of each (split, camera) job: those that hold an image of that camera with that role.
SHARD_BATCHES = {
    (split, camera): [
        batch
        for (c, batch), images in sorted(BATCHES.items())
        if c == camera and any(ROLES[c][i.image] == split for i in images)
    ]
    for split in SHARD_SPLITS
    for camera in SHARD_CAMERAS[split]
}


rule shards:
    input:
        develop=lambda w: [
            str(PATHS.batch_table("develop", w.camera, b))
            for b in SHARD_BATCHES.get((w.split, w.camera), [])
        ],
        residuals=lambda w: [
            str(PATHS.batch_table("residual", w.camera, b))
            for b in SHARD_BATCHES.get((w.split, w.camera), [])
            if KEEP_RESIDUALS
        ],
        fingerprints=FINGERPRINTS,
    output:
        folder=directory(f"{RESULTS}/dataset/{{split}}/{{camera}}"),
    log:
        f"{LOGS}/shards/{{split}}/{{camera}}.log",
    benchmark:
        f"{BENCH}/shards/{{split}}/{{camera}}.tsv"
    wildcard_constraints:
        split="|".join(SHARD_SPLITS),
        # only the cameras' names: results/dataset/<split>/manifest.csv is dataset_manifest's
        camera="|".join(re.escape(c) for c in CAMERAS) or "(?!)",
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
        sigma=config["spn"]["sigma"],
        out_dir=lambda wildcards, output: os.path.dirname(
            os.path.dirname(output.folder)
        ),
    script:
        "../scripts/shards.py"


rule dataset_manifest:
    input:
        folders=SHARD_FOLDERS,
    output:
        manifest=f"{RESULTS}/dataset/manifest.csv",
        splits=expand(f"{RESULTS}/dataset/{{split}}/manifest.csv", split=SHARD_SPLITS),
    log:
        f"{LOGS}/dataset_manifest.log",
    conda:
        "../../envs/spnrestore.yaml"
    params:
        splits=SHARD_SPLITS,
    script:
        "../scripts/dataset_manifest.py"
