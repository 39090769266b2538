# spnrestore: RAW originals -> JPEG copies -> sensor noise -> fingerprints -> restoration model -> evaluation.
# Run `snakemake --cores 8` (the default profile in profiles/default applies), `snakemake -n` for a dry-run.
from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# The landing page of `snakemake --report report.html`: the run in a few lines and its headline.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/develop.smk"
include: "workflow/rules/spn.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        manifest=f"{RESULTS}/manifest.csv",
        identification=f"{RESULTS}/spn/identification.csv",
        # with a model (reused, or trained here when the drive can train): the evaluation and its report
        evaluation=(
            [
                f"{RESULTS}/evaluation/metrics.csv",
                f"{RESULTS}/evaluation/results.md",
                f"{RESULTS}/evaluation/plots/residual_crops.png",
            ]
            if MODEL
            else []
        ),
        training=[f"{RESULTS}/evaluation/plots/training.png"] if PLAN.trainable else [],
        # the summary and tables of `snakemake --report` (workflow/rules/report.smk)
        report=f"{RESULTS}/report/summary.html",
