#!/usr/bin/env bash
# Quick start. Needs only python3 (3.11+) with pip.
#   bash run.sh demo   set up .venv, generate the demo drive, run the whole workflow on it (ignores .env)
#   bash run.sh drive  set up .venv, run the whole workflow on the drive named by .env (EXTERNAL_DRIVE)
#   bash run.sh test   set up .venv, run the test suite (what CI runs; TEST_WORKERS pytest workers, default 2)
# Extra arguments go to snakemake (demo) or pytest (test).
set -euo pipefail
cd "$(dirname "$0")"

setup() {
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv || {
            echo "run.sh: 'python3 -m venv' failed; install your distribution's venv package (e.g. python3-venv)" >&2
            exit 1
        }
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -c envs/constraints-cpu.txt -e ".[train,dev]"
    export PATH="$PWD/.venv/bin:$PATH"
}

case "${1:-}" in
    demo)
        # Always the demo drive: .env and the drive keys of the environment (a real drive) are ignored.
        shift
        setup
        env -u ORIGINAL_IMAGES_DIR -u COMPRESSED_IMAGES_DIR -u SPN_IMAGES_DIR -u QUALITY_LEVELS \
            SPNRESTORE_DOTENV= EXTERNAL_DRIVE= snakemake --cores "${CORES:-2}" "$@"
        echo "Results: .demo/results (evaluation/metrics.csv, report: snakemake --report report.html)"
        ;;
    drive)
        # A real drive: EXTERNAL_DRIVE from .env or the environment (see the README).
        shift
        if [ ! -f .env ] && [ -z "${EXTERNAL_DRIVE:-}" ]; then
            echo "run.sh: no .env and no EXTERNAL_DRIVE: copy .env.example to .env and set EXTERNAL_DRIVE" >&2
            exit 2
        fi
        setup
        snakemake --cores "${CORES:-2}" "$@"
        echo "Results: results/ (evaluation/metrics.csv, report: snakemake --report report.html)"
        ;;
    test)
        shift
        setup
        # Each test file in one worker (its module fixtures are made once), the files in the order of
        # tests/conftest.py (end-to-end files first); TEST_WORKERS=0: no workers.
        python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
        ;;
    *)
        echo "usage: bash run.sh demo|drive|test [extra arguments]" >&2
        exit 2
        ;;
esac
