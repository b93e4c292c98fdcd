#!/usr/bin/env bash
# One call on a GPU machine for photo set v3 (issue 22): train at 128 px (configs/gpu/v3-128.toml,
# a warm start from the bundled weights) and send back the weights. Everything else happens here,
# on the CPU, where the held-out photos are the same files every other figure was scored on.
#
# Here, once (the photos must travel with the working tree, 64 MiB in all with the tracked files;
# 974 photos at a 256-pixel side and JPEG quality 75 are 27 MB):
#   echo /.gpu-photos/ >> .git/info/exclude
#   python scripts/build_photo_set.py --out .gpu-photos --short-side 256 --quality 75 \
#       --debs DEBS --downloads DOWNLOADS
# There, in one device call carrying .gpu-photos:
#   bash scripts/gpu_v3.sh .gpu-photos "$OUT"
# Back here (FILES: the folder the call's files came back to):
#   bash scripts/gpu_v3.sh --join FILES WEIGHTS    # WEIGHTS/model.safetensors + config.json
#   python benchmarks/bench_decoding.py --data photos256/val.txt --weights WEIGHTS --size 128 \
#       --upsample guided --shapes aspect --tta none --gammas 0 --neutral-shapes garrote \
#       --temperatures 1 --saturations 1.1,1.2,1.3,1.4,1.5 --neutrals 5,6
#
# A file that comes back from a device call is at most 16 MiB, so the float16 weights (35 MB)
# come back in three parts, with their SHA-256 to check the join. A second call on a warm machine
# resumes the run in RUN_DIR (/tmp/v3-128).
# Tested on the CPU with a tiny run: DEVICE=cpu TIME_LIMIT=0 TRAIN_ARGS="--max-steps 2
# --batch-size 4 --crop-size 32 --workers 0 --val-every 1" bash scripts/gpu_v3.sh PHOTOS OUT
#
# Environment: TIME_LIMIT (seconds of training, default 480, so that a 10-minute call ends),
# DEVICE (cuda), TRAIN_ARGS (more `jkspnet train` flags).
# Writes OUT/train.log, OUT/metrics.jsonl, OUT/config.json, OUT/sha256 and
# OUT/model.safetensors.part-0{0,1,2}.
set -u -o pipefail
python=${PYTHON:-python3}

if [ "${1:-}" = "--join" ]; then
    files=$2 weights=$3
    mkdir -p "$weights" || exit 1
    cat "$files"/model.safetensors.part-* >"$weights/model.safetensors" || exit 1
    cp "$files/config.json" "$weights/config.json" || exit 1
    (cd "$weights" && sha256sum --quiet -c -) <"$files/sha256" || {
        echo "gpu_v3: the joined weights do not match their SHA-256" >&2
        exit 1
    }
    echo "weights joined in $weights"
    exit 0
fi

photos=$1 out=$2
run=${RUN_DIR:-/tmp/v3-128}
mkdir -p "$out"
if [ -f "$run/config.toml" ]; then
    start=(--resume "$run")
else
    start=(--config configs/gpu/v3-128.toml --data "$photos/train.txt" --val "$photos/val.txt"
        --out "$run" --device "${DEVICE:-cuda}")
fi
PYTHONUNBUFFERED=1 $python -m jkspnet train "${start[@]}" --time-limit "${TIME_LIMIT:-480}" -q \
    ${TRAIN_ARGS:-} 2>&1 | tee "$out/train.log" | tail -n 3
cp "$run/metrics.jsonl" "$out/metrics.jsonl" 2>/dev/null
if [ ! -d "$run/best" ] && [ ! -e "$run/last" ]; then
    echo "gpu_v3: training left no weights; see $out/train.log" >&2
    exit 1
fi
weights=/tmp/v3-128-weights
rm -rf "$weights"
$python scripts/bundle_weights.py --run "$run" --size 128 --temperature 1 --shape aspect \
    --saturation 1.35 --neutral 5 --neutral-shape garrote --out "$weights" || exit 1
cp "$weights/config.json" "$out/config.json"
(cd "$weights" && sha256sum model.safetensors) >"$out/sha256"
split -b 15M -d -a 2 "$weights/model.safetensors" "$out/model.safetensors.part-"
ls -l "$out"
