#!/usr/bin/env bash
# The pretraining comparisons of docs/model.md, as separate runs of `spnrestore pretrain` on the shipped settings
# (config/pretrain.yaml) with one change each (--set). The synthetic stream is a function of the seed and the batch
# size, so runs with the same seed see the same examples; each writes OUT/<variant>/restorer.pt and its logs.
# (These were once one run feeding several generators the same batches: bench/pretrain_variants.yaml and
# bench/pretrain_default_gpu.yaml; each variant now has its own time budget and its own data preparation.)
#
#   bash bench/pretrain_variants.sh variants OUT [pretrain options]      # the shipped one and one change each
#   bash bench/pretrain_variants.sh default_gpu OUT [pretrain options]   # the default-size generator at lr 2e-4
#
# Options after OUT go to every run (e.g. --workers 8, --time-budget 60, --device cuda:1) and win over the --set.
set -euo pipefail
group=${1:?usage: bash bench/pretrain_variants.sh variants|default_gpu OUT [pretrain options]}
out=${2:?usage: bash bench/pretrain_variants.sh variants|default_gpu OUT [pretrain options]}
shift 2
run() {
    local name=$1
    shift
    spnrestore pretrain --settings config/pretrain.yaml -o "$out/$name" "$@"
}
default_model='model={filter_bins: 10, jpeg_features: true}'  # the default size (training_schema.yaml)
case $group in
variants)
    run small "$@"
    run small_nofilter --set model.filter_bins=0 "$@"
    run small_nojpeg --set model.jpeg_features=false "$@"
    run small_adv --set loss_weights.adv=0.01 "$@"  # from step 0, discriminator 32 x 3 (config/pretrain.yaml)
    run tiny --set "model={width: 8, max_width: 16, depth: 2, blocks: 1, hourglass: 1, hourglass_depth: 1, q_embed: 16, filter_bins: 10, jpeg_features: true}" "$@"
    run default --set "$default_model" "$@"  # collapsed to a constant output at lr 1e-3: see default_gpu
    ;;
default_gpu)
    # at the default training rate; 240 s each, the block filter fitted on 12000 examples
    run small_lr2e-4 --set lr=2.0e-4 --set time_budget_s=240 --set filter_examples=12000 "$@"
    run default --set "$default_model" --set lr=2.0e-4 --set time_budget_s=240 --set filter_examples=12000 "$@"
    ;;
*)
    echo "unknown group $group: variants or default_gpu" >&2
    exit 2
    ;;
esac
