#!/usr/bin/env bash
# test_cli.sh - the facemask CLI on hostile input (ctest "Cli"), in a temporary directory:
#   test_cli.sh FACEMASK FM_CLI_FIXTURES MODEL_DIR FIXTURES_DIR SANITIZED(1/0)
# --annotate never writes over an input or over another output of the run; the documented exit
# codes (0 fine, 1 some file failed, 2 usage or model errors); control bytes in file names and
# labels are escaped in text output; a label the classifier is unsure of is marked. Prints each failure and exits 1 if there was any.
set -uo pipefail
FM=$1 GEN=$2 MODELS=$3 FIX=$4 SANITIZED=${5:-0}
T=$(mktemp -d "${TMPDIR:-/tmp}/fm_cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
PHOTO=$FIX/three_faces_1mask_1nomask_1chin.jpg
DET=(--detector "$MODELS/blazeface-short.fmm")
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# run NAME WANT_STATUS COMMAND...: stdout in $T/NAME.out, stderr in $T/NAME.err.
run() {
  local name=$1 want=$2
  shift 2
  "$@" >"$T/$name.out" 2>"$T/$name.err"
  local status=$?
  [ "$status" = "$want" ] || fail "$name: exit $status, want $want: $(head -c 600 "$T/$name.err")"
}
# has FILE TEXT: fixed-string search in $T/FILE.
has() { grep -qF -- "$2" "$T/$1" || fail "$1 lacks '$2': $(head -c 600 "$T/$1")"; }
same() { cmp -s "$1" "$2" || fail "$2 was changed"; }
is_jpeg() { [ -f "$1" ] && [ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' ')" = ffd8 ] || fail "no JPEG $1"; }
# Runs COMMAND... with at most MB megabytes to allocate, so a regression fails fast instead of
# eating the machine: ASan's allocator limit in sanitized builds, ulimit -v otherwise.
limited() {
  local mb=$1
  shift
  if [ "$SANITIZED" = 1 ]; then
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=$mb" "$@"
  else
    (ulimit -v $((mb * 1024)) && exec "$@")
  fi
}

"$GEN" "$MODELS" "$T" || {
  echo "FAIL: fm_cli_fixtures" >&2
  exit 1
}

# ---- 1. --annotate DIR where DIR is the input folder: inputs stay, each output has its own name.
mkdir -p "$T/photos/2020" "$T/photos/2021"
cp "$PHOTO" "$T/photos/a.jpg"
cp "$FIX/bad/palette_alpha.png" "$T/photos/a.png"
cp "$PHOTO" "$T/photos/2020/IMG_1.JPG"
cp "$FIX/bad/grey.jpg" "$T/photos/2021/IMG_1.JPG"
cp -r "$T/photos" "$T/orig"
run in_place 0 "$FM" detect "${DET[@]}" --no-classifier --threads 2 --annotate "$T/photos" \
  "$T/photos"
for f in a.jpg a.png 2020/IMG_1.JPG 2021/IMG_1.JPG; do same "$T/orig/$f" "$T/photos/$f"; done
for f in a.annotated.jpg a.annotated-2.jpg IMG_1.annotated.jpg IMG_1.annotated-2.jpg; do
  is_jpeg "$T/photos/$f"
done
cmp -s "$T/photos/IMG_1.annotated.jpg" "$T/photos/IMG_1.annotated-2.jpg" &&
  fail "2020/IMG_1.JPG and 2021/IMG_1.JPG gave one output"
has in_place.err "photos/2021/IMG_1.JPG: annotated as $T/photos/IMG_1.annotated-2.jpg"
has in_place.err "photos/a.png: annotated as $T/photos/a.annotated-2.jpg"
[ -z "$(find "$T/photos" -name '*.tmp')" ] || fail "temporary files left: $(find "$T/photos")"

# Again: the outputs of the first run are inputs now, so they are not written over either.
cp -r "$T/photos" "$T/orig2"
run again 0 "$FM" detect "${DET[@]}" --no-classifier --annotate "$T/photos" "$T/photos"
while read -r f; do same "$T/orig2/$f" "$T/photos/$f"; done < <(cd "$T/orig2" && find . -type f)
is_jpeg "$T/photos/a.annotated-3.jpg"
has again.err "a.annotated.jpg would be one of the inputs"

# The would-be output is a hard link to an input.
mkdir "$T/linked"
ln "$T/orig/a.jpg" "$T/linked/a.annotated.jpg"
run linked 0 "$FM" detect "${DET[@]}" --no-classifier --annotate "$T/linked" "$T/orig/a.jpg"
same "$PHOTO" "$T/orig/a.jpg"
is_jpeg "$T/linked/a.annotated-2.jpg"

# ---- 2. Exit codes.
mkdir "$T/empty"
run empty_dir 1 "$FM" detect "${DET[@]}" "$T/empty"
has empty_dir.err "empty: error: no images in this directory"
run missing 1 "$FM" detect "${DET[@]}" "$T/nope" "$PHOTO"
has missing.err "nope: error: no such file or directory"
has missing.out "3 faces"
run missing_json 1 "$FM" detect --json "${DET[@]}" "$T/nope/"
has missing_json.out '"error": "no such file or directory"'
run no_detector 2 "$FM" detect --detector "$T/nope.fmm" "$PHOTO"
has no_detector.err "nope.fmm"
run bad_detector 2 "$FM" detect --detector "$PHOTO" "$PHOTO"
has bad_detector.err "facemask: "
run anchors 2 limited 512 "$FM" detect --detector "$T/bomb.fmm" "$PHOTO"
has anchors.err "anchor_strides"
has anchors.err "(detector $T/bomb.fmm"
if [ "$SANITIZED" != 1 ]; then  # ASan's allocator reports running out instead of throwing
  run out_of_memory 2 limited 100 "$FM" detect --detector "$T/huge.fmm" "$PHOTO"
  has out_of_memory.err "out of memory"
  run out_of_memory_classify 2 limited 100 "$FM" classify --model "$T/huge.fmm" "$PHOTO"
  has out_of_memory_classify.err "out of memory"
fi
run min_tile 2 "$FM" detect "${DET[@]}" --min-tile 0.4 "$PHOTO"
has min_tile.err "--min-tile must be a number in 0.5..8"
run min_tile_ok 0 "$FM" detect "${DET[@]}" --min-tile 1.25 "$PHOTO"
run convert_missing 2 "$FM" convert "$T/nope.h5" -o "$T/x.fmm"
run convert_bad 2 "$FM" convert "$PHOTO" -o "$T/x.fmm"
run export_missing 2 "$FM" export "$T/nope.fmm" --onnx "$T/x.onnx"
run export_bad 2 "$FM" export "$PHOTO" --onnx "$T/x.onnx"
[ ! -e "$T/x.fmm" ] && [ ! -e "$T/x.onnx" ] || fail "a failed convert/export left its output"

# ---- 1b. quantize: refusals leave OUTPUT as it was; a quantized model finds the same faces.
echo keep >"$T/q.fmm"
run quantize_missing 2 "$FM" quantize "$T/nope.fmm" -o "$T/q.fmm"
run quantize_bad 2 "$FM" quantize "$PHOTO" -o "$T/q.fmm"
run quantize_self 2 "$FM" quantize "$MODELS/blazeface-short.fmm" -o "$MODELS/blazeface-short.fmm"
has quantize_self.err "OUTPUT is MODEL"
run quantize_keep 2 "$FM" quantize "$MODELS/blazeface-short.fmm" -o "$T/q.fmm" --keep-float nope
has quantize_keep.err "'nope' (to keep in float) is not the weights"
run quantize_min 2 "$FM" quantize "$MODELS/blazeface-short.fmm" -o "$T/q.fmm" --min-elements 0
[ "$(cat "$T/q.fmm")" = keep ] || fail "a refused quantize changed its OUTPUT"
run quantize_ok 0 "$FM" quantize "$MODELS/blazeface-short.fmm" -o "$T/q.fmm" --list
has quantize_ok.out "as int8"
run quantize_twice 2 "$FM" quantize "$T/q.fmm" -o "$T/q2.fmm"
has quantize_twice.err "is already int8; quantize the float model instead"
run det_float 0 "$FM" detect --json --no-classifier "${DET[@]}" "$PHOTO"
run det_int8 0 "$FM" detect --json --no-classifier --detector "$T/q.fmm" "$PHOTO"
[ "$(grep -o '"box"' "$T/det_int8.out" | wc -l)" = "$(grep -o '"box"' "$T/det_float.out" | wc -l)" ] ||
  fail "int8 weights changed the faces found: $(cat "$T/det_float.out") vs $(cat "$T/det_int8.out")"
# --precision int8 without the int8 files says which is missing (never runs without a classifier).
mkdir "$T/no_det8" "$T/no_cls8"
cp "$MODELS/detector.fmm" "$MODELS/classifier.fmm" "$MODELS/classifier-int8.fmm" "$T/no_det8/"
cp "$MODELS/detector-int8.fmm" "$MODELS/classifier.fmm" "$T/no_cls8/"
run no_det8 2 env FACEMASK_MODEL_DIR="$T/no_det8" "$FM" detect --precision int8 "$PHOTO"
has no_det8.err "no_det8/detector-int8.fmm"
run no_cls8 2 env FACEMASK_MODEL_DIR="$T/no_cls8" "$FM" detect --precision int8 "$PHOTO"
has no_cls8.err "classifier-int8.fmm is missing"
run precision_int8 0 "$FM" detect --json --precision int8 "$PHOTO"
has precision_int8.out '"label"'
run precision_bad 2 "$FM" detect --precision int4 "$PHOTO"
has precision_bad.err "--precision must be float or int8"

# ---- 2. Control bytes in file names and labels are escaped in text output (not in JSON).
ESC=$'\x1b'
mkdir "$T/names"
cp "$PHOTO" "$T/names/red${ESC}[31m.jpg"
printf 'not a picture' >"$T/names/bell"$'\a'".jpg"
run escaped 1 "$FM" detect "${DET[@]}" --classifier "$T/labels.fmm" --annotate "$T/out" \
  "$T/names"
has escaped.out 'red\x1b[31m.jpg: 3 faces'
has escaped.err 'bell\x07.jpg: error:'
for f in escaped.out escaped.err; do
  LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$T/$f" && fail "$f has control bytes: $(cat -v "$T/$f")"
done
# The labels: "máscara" (UTF-8 passes), "\x1b[31mred\x07", "ok\x7f"; annotated under ASan too.
grep -qE 'scara|red\\x07|ok\\x7f' "$T/escaped.out" || fail "no labels in $(cat -v "$T/escaped.out")"
is_jpeg "$T/out/red${ESC}[31m.annotated.jpg"
run classify_escaped 0 "$FM" classify --model "$MODELS/classifier.fmm" "$T/names/red${ESC}[31m.jpg"
has classify_escaped.out 'red\x1b[31m.jpg: '
# One result writer: classify --json has the C API's shape (the photo's size, 4-decimal probs).
run classify_json 0 "$FM" classify --json --model "$MODELS/classifier.fmm" "$PHOTO"
grep -qE '^\{"file": "[^"]+", "width": 412, "height": 215, "label": "[a-z_]+", "probs": \{("[a-z_]+": [01]\.[0-9]{4}(, )?){3}\}\}$' \
  "$T/classify_json.out" || fail "classify_json: $(cat "$T/classify_json.out")"
run escaped_json 1 "$FM" detect --json "${DET[@]}" --classifier "$T/labels.fmm" "$T/names"
has escaped_json.out '"file": "'"$T"'/names/red\u001b[31m.jpg"'

# ---- 3. A label under the classifier's unsure_below is marked as a guess, in every output.
run unsure 0 "$FM" detect "${DET[@]}" --classifier "$T/unsure.fmm" --annotate "$T/unsure" "$PHOTO"
[ "$(grep -c '(unsure)' "$T/unsure.out")" = 3 ] || fail "unsure: $(cat "$T/unsure.out")"
is_jpeg "$T/unsure/three_faces_1mask_1nomask_1chin.annotated.jpg"
run unsure_json 0 "$FM" detect --json "${DET[@]}" --classifier "$T/unsure.fmm" "$PHOTO"
[ "$(grep -o '"confident": false' "$T/unsure_json.out" | wc -l)" = 3 ] ||
  fail "unsure_json: $(cat "$T/unsure_json.out")"
run sure_json 0 "$FM" detect --json "${DET[@]}" --classifier "$T/sure.fmm" "$PHOTO"
[ "$(grep -o '"confident": true' "$T/sure_json.out" | wc -l)" = 3 ] ||
  fail "sure_json: $(cat "$T/sure_json.out")"
run sure 0 "$FM" detect "${DET[@]}" --classifier "$T/sure.fmm" "$PHOTO"
grep -q unsure "$T/sure.out" && fail "sure: $(cat "$T/sure.out")"
# The annotated guess is drawn in its own colour: the two photos differ.
run sure_annotated 0 "$FM" detect "${DET[@]}" --classifier "$T/sure.fmm" --annotate "$T/sure" "$PHOTO"
cmp -s "$T/sure/three_faces_1mask_1nomask_1chin.annotated.jpg" \
  "$T/unsure/three_faces_1mask_1nomask_1chin.annotated.jpg" && fail "unsure faces drawn as sure"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "CLI: all checks passed"
