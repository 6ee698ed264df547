#!/usr/bin/env bash
# eval_crosscheck.sh - checks fm_eval_scenes' own scoring against the shared python scorers: runs
# it on 40 dev photos of the scenes with the shipped classifier (--json, --jsonl), scores the
# written detections with ../shared/eval/map.py (all sizes and --min-px 32) and score.py, and fails
# unless both mAPs and the unmatched boxes per photo agree within 1e-3. Skips (exit 0) without
# the scenes, the scorers or python3.
#   tests/eval_crosscheck.sh FM_EVAL_SCENES SCENES_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -ne 2 ]; then
  echo "usage: $0 FM_EVAL_SCENES SCENES_DIR" >&2
  exit 2
fi
bin="$1" scenes="$2"
eval_dir="$ROOT/../shared/eval"
if [ ! -d "$scenes" ]; then
  echo "eval_crosscheck: skipped (no scenes dir $scenes)"
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "eval_crosscheck: skipped (no python3)"
  exit 0
fi
if [ ! -f "$eval_dir/map.py" ] || [ ! -f "$eval_dir/score.py" ]; then
  echo "eval_crosscheck: skipped (no $eval_dir/map.py or score.py)"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bin" --classifier "$ROOT/model/classifier.fmm" --split dev --limit 40 \
  --json "$tmp/ev.json" --jsonl "$tmp/ev.jsonl" "$scenes" >"$tmp/stdout.txt"
python3 "$eval_dir/map.py" "$scenes" "$tmp/ev.jsonl" --only-predicted | tail -n 1 >"$tmp/map.json"
python3 "$eval_dir/map.py" "$scenes" "$tmp/ev.jsonl" --only-predicted --min-px 32 | tail -n 1 \
  >"$tmp/map32.json"
python3 "$eval_dir/score.py" "$scenes" "$tmp/ev.jsonl" --only-predicted | tail -n 1 \
  >"$tmp/score.json"

python3 - "$tmp" <<'EOF'
import json, sys
d = sys.argv[1]
load = lambda name: json.load(open(f"{d}/{name}"))
ev, m, m32, sc = load("ev.json"), load("map.json"), load("map32.json"), load("score.json")
checks = [
    ("mAP@0.5 all sizes", ev["map50"], m["map50"]),
    ("mAP@0.5 faces >= 32 px", ev["map50_ge32px"], m32["map50"]),
    ("unmatched boxes per photo", ev["false_boxes"]["per_photo"], sc["false_boxes_per_image"]),
    ("photos", ev["false_boxes"]["photos"], sc["images"]),
]
bad = 0
for name, ours, theirs in checks:
    ok = abs(ours - theirs) <= 1e-3
    bad += not ok
    print(f"  {name:28s} fm_eval_scenes {ours:.4f}  python {theirs:.4f}  {'ok' if ok else 'MISMATCH'}")
print("eval_crosscheck: " + ("FAILED" if bad else "passed") + f" ({ev['images']} photos)")
sys.exit(1 if bad else 0)
EOF
