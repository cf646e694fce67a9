#!/usr/bin/env bash
# Train s2c-conv-small on a lent GPU machine, starting from an exported checkpoint, and put the
# new export, the history and the log under $OUT (docs/weights.md, "Training on a GPU").
#
# That machine has torch, torchvision, pandas, pyarrow, scipy, torch-geometric and the rest of our
# runtime, but not compressai or pytorch-msssim, and it cannot download. Before the call, here:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_34_x86_64 -d .whl compressai==1.2.8
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl pytorch-msssim==1.0.0
#   make pack-enlightenment        # data-cache/train-pack-enlightenment.tar, 35 MB
# then run this script with carry [".whl", "data-cache/train-pack-enlightenment.tar"] and, as its argument, the
# checkpoint to start from (default: the bundled current s2c-conv-small weights). Each call trains
# for the config's max_minutes (8, inside the 10-minute limit of one command); a next call on a
# fresh machine passes the export that came back as its argument. Adam restarts at every init.
set -euo pipefail
START=${1:-$(python3 -c 'import json;print(next("s2c_pipeline/codec/weights/"+e["file"] for e in json.load(open("s2c_pipeline/codec/weights/index.json")) if e["model_name"]=="s2c-conv-small" and e.get("current", True)))')}
OUT=${OUT:-runs/device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || echo "no nvidia-smi: this is not a GPU machine" >&2
python3 -m s2c_pipeline train --config configs/train-small-gpu.yaml --set "init_from=$START" \
    --export "$OUT" "${@:2}" 2>&1 | tr '\r' '\n' | grep -v 'step/s\]$' | tee "$OUT/train.log"
cp runs/conv-small-gpu/history.jsonl runs/conv-small-gpu/config.yaml "$OUT/"
