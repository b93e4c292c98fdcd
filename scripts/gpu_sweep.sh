#!/usr/bin/env bash
# Train the GPU sweep (configs/gpu/sweep-*.toml, one after another), score each run's best
# weights on its own validation photos with `jkspnet eval`, keep the run with the lowest
# validation loss, score it at more sizes, and write it as float16 weights ready to bundle.
#
#   bash scripts/gpu_sweep.sh PHOTOS RUNS REPORTS
#
# Writes REPORTS/<run>.log, REPORTS/<run>-<size>/ (eval reports), REPORTS/choice.json and
# REPORTS/weights/ (model.safetensors + config.json at size 128, temperature 0.5; pick the final
# size and temperature from the reports and re-bundle with scripts/bundle_weights.py).
set -u -o pipefail
photos=$1 runs=$2 reports=$3
python=${PYTHON:-python3}
temperatures=1,0.7,0.5,0.38
mkdir -p "$runs" "$reports"

for config in configs/gpu/sweep-*.toml; do
    name=$(basename "$config" .toml)
    echo "== $name: training" >&2
    $python -m jkspnet train --config "$config" --data "$photos" --out "$runs/$name" -q ${TRAIN_ARGS:-} \
        2>&1 | tee "$reports/$name.log" | tail -n 3
    [ -f "$runs/$name/final.json" ] && cp "$runs/$name/final.json" "$reports/$name-final.json"
    cp "$runs/$name/metrics.jsonl" "$reports/$name-metrics.jsonl" 2>/dev/null
    $python -m jkspnet eval --data "$runs/$name/val_photos.txt" --weights "$runs/$name" \
        --size 128 --temperature $temperatures --out "$reports/$name-128" --grid 0 -q \
        >"$reports/$name-128.txt" 2>&1
done

best=$($python - "$runs" <<'EOF'
import json, sys
from pathlib import Path
scores = {}
for final in sorted(Path(sys.argv[1]).glob("*/final.json")):
    scores[final.parent.name] = json.loads(final.read_text())["best_val_loss"]
print(min(scores, key=scores.get) if scores else "")
EOF
)
if [ -z "$best" ]; then echo "gpu_sweep: no run finished; see $reports/*.log" >&2; exit 1; fi
echo "== chosen: $best (lowest validation loss)" >&2
echo "{\"run\": \"$best\"}" >"$reports/choice.json"
for size in 96 192; do
    $python -m jkspnet eval --data "$runs/$best/val_photos.txt" --weights "$runs/$best" \
        --size $size --temperature $temperatures --out "$reports/$best-$size" --grid 0 -q \
        >"$reports/$best-$size.txt" 2>&1
done
$python scripts/bundle_weights.py --run "$runs/$best" --size 128 --temperature 0.5 \
    --out "$reports/weights"
