#!/usr/bin/env bash
# One lent-GPU session in one command: train s2c-conv-small from an exported checkpoint, export it,
# then check CPU <-> GPU decoding. Everything worth keeping lands in $OUT (docs/weights.md,
# "Training on a GPU"); nothing here is needed by CI.
#
# That machine has torch, torchvision, pandas, pyarrow, scipy and the rest of our runtime, but not
# compressai or pytorch-msssim, and it cannot download. Before the call, here: `make device-prep`
# (the two wheels into .whl/, the 35 MB Enlightenment pack, CPU-written streams into .gpu-check/;
# with the 30 MB tree that is 66 MB, just under the 64 MiB = 67.1 MB a call may carry), then run
# `TRAIN_MINUTES=7 bash infra/device/train_gpu.sh [CHECKPOINT]` with carry
# [".whl", "data-cache/train-pack-enlightenment.tar", ".gpu-check"] and timeout_s 590.
# A lease is 15 minutes in all, machine start included: that call (8.5 minutes) leaves room for a
# second one with TRAIN_MINUTES=4 on the still-warm machine, which resumes from runs/*/last.pt
# (ignored paths stay there between calls). Each lease's two calls: infra/device/results/.
# CONFIG picks the stage (default configs/train-small-gpu.yaml, stage 4's; stages 7 and 8 ran
# configs/train-small-stage7-gpu.yaml and -stage8-; configs/train-small-stage9-gpu.yaml is the next
# lease's).
# The new training set (69 MB) cannot travel in one call: `make device-packs` cuts it into packs of
# at most 25 MB (data-cache/device/), and a lease brings one a call on the warm machine, which
# keeps what earlier calls brought, with TRAIN_MINUTES=0 until the last has arrived (docs/weights.md,
# "Shipping the new training set"); configs/train-small-stage9-gpu.yaml trains on them.
# CHECKPOINT defaults to the bundled current s2c-conv-small weights. TRAIN_MINUTES (default 7)
# bounds the training; if the run fails (a non-finite loss under bf16 autocast, say), it resumes
# from its last checkpoint without autocast, compilation or device crops for the time left. Adam
# restarts at every init. THROUGHPUT=1 (default) first runs benchmarks/train_throughput.py (about a
# minute, $OUT/train_throughput_gpu.json); THROUGHPUT=0 skips it on a second call.
set -uo pipefail
TRAIN_MINUTES=${TRAIN_MINUTES:-7}
CONFIG=${CONFIG:-configs/train-small-gpu.yaml}
WHEELS=${WHEELS:-.whl}            # a machine that has compressai (a dry run here) passes WHEELS=none
OUT=${OUT:-runs/device-out}
RUN=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["out"])' "$CONFIG")
mkdir -p "$OUT"
if [ -d "$WHEELS" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
START=${1:-$(python3 -c 'import os; from s2c_pipeline.codec.weights import find_weights
print(os.path.relpath(find_weights("s2c-conv-small").path))')}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"; nproc; } | tee "$OUT/machine.txt"

# The progress bar's carriage-return updates become lines; keep one in 500 of them.
train() {
    python3 -m s2c_pipeline train --config "$CONFIG" --set "init_from=$START" "$@" 2>&1 \
        | tr '\r' '\n' | awk 'NF && (/INFO|Error|Traceback/ || !/\[[0-9:]+<[0-9:?]+/ || ++n % 500 == 0) { print; fflush() }' | tee -a "$OUT/train.log"
}
# Throughput first (about a minute): crops/s under each speed-up, the record of what this GPU does.
if [ "${THROUGHPUT:-1}" = 1 ]; then
    timeout 150 python3 benchmarks/train_throughput.py --device cuda --steps 10 --warmup 3 --batch-multiples 2 \
        --json "$OUT/train_throughput_gpu.json" 2>&1 | grep -v Warning | tee -a "$OUT/train.log"
fi
if [ "$TRAIN_MINUTES" = 0 ]; then  # a call that only brings data (device-packs) and measures
    ls -la "$OUT"
    exit 0
fi
began=$SECONDS
train --set "max_minutes=$TRAIN_MINUTES"
rc=$?
left=$(( TRAIN_MINUTES * 60 - (SECONDS - began) ))
if [ "$rc" -ne 0 ] && [ "$left" -gt 60 ]; then
    echo "training failed (rc $rc); resuming without autocast and with CPU crops for ${left}s" | tee -a "$OUT/train.log"
    train --set amp=false --set crops_on_device=false --set compile= --set "max_minutes=$(( left / 60 ))"
fi
cp "$RUN/history.jsonl" "$RUN/config.yaml" "$OUT/" 2>/dev/null
cp "$RUN/profile.txt" "$OUT/" 2>/dev/null  # when the config sets profile_steps
python3 - "$RUN" "$OUT" "$START" "$CONFIG" <<'PY' 2>&1 | tee -a "$OUT/train.log"
import shlex, sys
from pathlib import Path
from s2c_pipeline.train.export import export_run
run, out, start, config = sys.argv[1:]
command = shlex.join(["bash", "infra/device/train_gpu.sh", start]) + f"  # s2c train --config {config} --set init_from={start}"
entry = export_run(Path(run), Path(out), command=command)
print(f"exported {entry.path} (sha256 {entry.sha256})")
PY

# CPU <-> GPU decoding, with the bundled weights (infra/device/cross_device_check.py).
if [ -d .gpu-check/cpu ]; then
    timeout 60 python3 infra/device/cross_device_check.py decode --device cuda --streams .gpu-check/cpu \
        --out "$OUT/gpu-decoded-cpu-streams.npz"
    timeout 60 python3 infra/device/cross_device_check.py encode --device cuda --out "$OUT/gpu" > /dev/null \
        && tar -cf "$OUT/gpu-streams.tar" -C "$OUT" gpu && rm -r "$OUT/gpu"
fi
ls -la "$OUT"
