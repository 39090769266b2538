#!/usr/bin/env bash
# Quick start. Needs only python3 (3.11+) with pip.
#   bash run.sh demo   set up .venv, generate the demo drive, run the whole workflow on it
#   bash run.sh test   set up .venv, run the test suite (what CI runs)
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
        shift
        setup
        snakemake --cores "${CORES:-2}" "$@"
        echo "Results: .demo/results (evaluation/metrics.csv, report: snakemake --report report.html)"
        ;;
    test)
        shift
        setup
        python -m pytest "$@"
        ;;
    *)
        echo "usage: bash run.sh demo|test [extra arguments]" >&2
        exit 2
        ;;
esac
