#!/usr/bin/env bash
# One training stage on a lent GPU machine (issue 8, item 6), in two halves:
#
#   bash scripts/gpu_stage.sh prepare            # here: pack the data and the missing wheels into .device/
#   # device tool: run(command="bash scripts/gpu_stage.sh run 8", carry=[".device"], timeout_s=600)
#   bash scripts/gpu_stage.sh run MINUTES [CONFIG]   # there: train MINUTES, export fp16 weights to $OUT
#
# then, here:  cat FILES_AT/gpu.safetensors.part* > models/gpu.safetensors
#              cunet evaluate ../shared/data/people ../shared/data/people-scenes --model models/gpu.safetensors
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
        cunet dataset pack "$DATA/$source/manifest.csv" --out "$STAGE/data/$source" --size 128 --quality 75
    done
    # 64 MiB travel in all: keep every val photo and every scene photo, and a fixed share of the
    # large people sources' train photos (chosen by content hash, so the same ones each time).
    python - "$STAGE/data/people" <<'PY'
import csv, sys
from pathlib import Path
folder = Path(sys.argv[1])
keep = {"lspet": 0.5, "utkface": 0.3}
with (folder / "manifest.csv").open(newline="") as handle:
    rows = list(csv.DictReader(handle))
kept = [r for r in rows if r["split"] == "val" or int(r["sha256"][:8], 16) / 16**8 < keep.get(r["source"], 1.0)]
for row in rows:
    if row not in kept:
        (folder / row["file"]).unlink()
with (folder / "manifest.csv").open("w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(kept)
print(f"kept {len(kept)} of {len(rows)} people photos")
PY
    python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$STAGE/whl" kornia kornia-rs
    du -sh --apparent-size "$STAGE"
    [ "$(du -sm --apparent-size "$STAGE" | cut -f1)" -lt 56 ] || { echo "error: $STAGE is over 56 MiB: with the repository, too big to carry" >&2; exit 2; }
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
        | tr '\r' '\n' | grep -v "^training:" | tee "$out/train.txt"
    run_dir=$(python3 -c "from cunet.train import TrainConfig; print(TrainConfig.from_toml('$config').out_dir)")
    python3 -m cunet.cli export "$run_dir/last.safetensors" -o "$STAGE/gpu.safetensors"
    # Files come back at most 16 MiB each: the paper-width weights (~51 MiB fp16) travel in parts.
    split -b 15m -d "$STAGE/gpu.safetensors" "$out/gpu.safetensors.part"
    cp "$run_dir/log.jsonl" "$out/log.jsonl"
    ;;
*)
    echo "usage: bash scripts/gpu_stage.sh prepare | run MINUTES [CONFIG]" >&2
    exit 2
    ;;
esac
