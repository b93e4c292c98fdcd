#!/usr/bin/env bash
# One call on a GPU machine for photo set v3 (issue 22): train at 128 px (configs/gpu/v3-128.toml,
# a warm start from the bundled weights), score the best weights on the held-out sources per group
# and temperature, with and without confidence-aware decoding, and write them as float16 weights
# ready to bring back and bundle.
#
#   python scripts/build_photo_set.py --out photos256 --short-side 256     # here: 33 MB
#   bash scripts/gpu_v3.sh photos256 "$OUT"                                 # there
#
# The photos must travel with the working tree (64 MiB in all): a 256 build does; the 512 default
# (67 MB) does not. A second call on a warm machine resumes the run in RUN_DIR (/tmp/v3-128).
# Tested on the CPU with a tiny run: DEVICE=cpu EVAL_LIMIT=3 TIME_LIMIT=0
# TRAIN_ARGS="--max-steps 2 --batch-size 4 --crop-size 32 --workers 0" bash scripts/gpu_v3.sh ...
#
# Environment: TIME_LIMIT (seconds of training, default 420, so that a 10-minute call ends),
# DEVICE (cuda), TRAIN_ARGS (more `jkspnet train` flags), EVAL_LIMIT (photos scored; all).
# Writes OUT/train.log, OUT/metrics.jsonl, OUT/eval-g0.txt, OUT/eval-g05.txt (tables, per group),
# OUT/summary-g0.json, OUT/summary-g05.json and OUT/weights/ (model.safetensors + config.json,
# size 128, T 0.6; choose the final T and gamma from the tables and re-bundle with
# scripts/bundle_weights.py).
set -u -o pipefail
photos=$1 out=$2
python=${PYTHON:-python3}
run=${RUN_DIR:-/tmp/v3-128}
temperatures=0.6,0.4,0.5,0.8,1
limit=()
[ -n "${EVAL_LIMIT:-}" ] && limit=(--limit "$EVAL_LIMIT")
mkdir -p "$out"

if [ -f "$run/config.toml" ]; then
    start=(--resume "$run")
else
    start=(--config configs/gpu/v3-128.toml --data "$photos/train.txt" --val "$photos/val.txt"
        --out "$run" --device "${DEVICE:-cuda}")
fi
PYTHONUNBUFFERED=1 $python -m jkspnet train "${start[@]}" --time-limit "${TIME_LIMIT:-420}" -q \
    ${TRAIN_ARGS:-} 2>&1 | tee "$out/train.log" | tail -n 3
cp "$run/metrics.jsonl" "$out/metrics.jsonl" 2>/dev/null
if [ ! -d "$run/best" ] && [ ! -e "$run/last" ]; then
    echo "gpu_v3: training left no weights; see $out/train.log" >&2
    exit 1
fi
for gamma in 0 0.5; do
    tag=g${gamma/./}
    $python -m jkspnet eval --data "$photos/val.txt" --weights "$run" --size 128 --shape aspect \
        --confidence "$gamma" --temperature $temperatures --groups --grid 0 "${limit[@]}" \
        --out "/tmp/eval-$tag" --overwrite -q >"$out/eval-$tag.txt" 2>&1
    cp "/tmp/eval-$tag/summary.json" "$out/summary-$tag.json"
done
$python scripts/bundle_weights.py --run "$run" --size 128 --temperature 0.6 --shape aspect \
    --out "$out/weights"
