#!/usr/bin/env bash
# One training stage on a lent GPU machine (issue 8, item 6), in two halves:
#
#   bash scripts/gpu_stage.sh prepare            # here: pack the data and the missing wheels into .device/
#   # device tool: run(command="bash scripts/gpu_stage.sh run 8", carry=[".device"], timeout_s=600)
#   bash scripts/gpu_stage.sh run MINUTES [CONFIG]   # there: train MINUTES, export fp16 weights to $OUT
#
# then, here:  cunet evaluate ../shared/data/people ../shared/data/people-scenes --model FILES_AT/gpu.safetensors
# The machine has PyTorch, Pillow, scikit-image, safetensors, typer and tqdm but not kornia: its wheel
# travels in .device/whl. Nothing in the project needs this machine; `run` also works on a CPU (a smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${CUNET_DATA:-../shared/data}"
STAGE=.device

case "${1:-}" in
prepare)
    rm -rf "$STAGE" && mkdir -p "$STAGE/whl"
    for source in people people-scenes; do
        cunet dataset pack "$DATA/$source/manifest.csv" --out "$STAGE/data/$source" --size 128 --quality 80
    done
    python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$STAGE/whl" kornia kornia-rs
    du -sh "$STAGE"
    [ "$(du -sm "$STAGE" | cut -f1)" -lt 60 ] || { echo "error: $STAGE is over 60 MiB, too big to carry" >&2; exit 2; }
    ;;
run)
    minutes="${2:?give the training minutes}"
    config="${3:-configs/gpu_stage.toml}"
    out="${OUT:-$STAGE/out}"
    mkdir -p "$out"
    if ! python3 -c "import kornia" 2>/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$STAGE"/whl/*.whl
        export PYTHONPATH=/tmp/site
    fi
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    python3 -c "import torch; print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
    python3 -m cunet.cli train --config "$config" --stop-after-minutes "$minutes" 2>&1 \
        | tr '\r' '\n' | grep -v "^training: .*it/s\|step/s" | tee "$out/train.txt"
    run_dir=$(python3 -c "from cunet.train import TrainConfig; print(TrainConfig.from_toml('$config').out_dir)")
    python3 -m cunet.cli export "$run_dir/last.safetensors" -o "$out/gpu.safetensors"
    cp "$run_dir/log.jsonl" "$out/log.jsonl"
    ;;
*)
    echo "usage: bash scripts/gpu_stage.sh prepare | run MINUTES [CONFIG]" >&2
    exit 2
    ;;
esac
