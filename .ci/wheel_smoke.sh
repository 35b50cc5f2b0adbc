#!/usr/bin/env bash
# Wheel smoke test: what a user gets from `pip install .` works away from the checkout.
#
#   1. build the wheel from a clean copy of the tree (tracked + new files, nothing ignored:
#      no stale build/, no venv) and check what it holds (backprop_resources/, no top-level
#      resources/ docs/ examples/ squatting generic names in site-packages);
#   2. install it into a second, fresh venv (dependencies from the package index pip is
#      configured with);
#   3. from an empty temporary directory: open the studio offscreen on the installed xor
#      example with --self-check (fails if an icon, the style sheet, the templates, lessons
#      or guide pages did not load) and take a screenshot; train xor headless; list the
#      lessons (which loads every lesson and the example graphs its runs name); run lesson 1.
#
# Usage: bash .ci/wheel_smoke.sh [PYTHON]   (default python3; KEEP=1 keeps the work folder)
set -euo pipefail
CI="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$CI")"
PYTHON="${1:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/backprop-wheel-smoke.XXXXXX")"
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
step() { echo "== wheel smoke: $*"; }
quiet() {  # run a command, show its output only if it fails (pip's index warnings are noise)
  local log status=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then cat "$log" >&2; echo "failed ($status): $*" >&2; fi
  rm -f "$log"
  return "$status"
}
check() { "$PYTHON" "$CI/wheel_checks.py" "$@"; }

step "build the wheel from a clean copy of the tree"
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/run"
check copy "$REPO" "$WORK/src"
quiet "$PYTHON" -m pip wheel --no-deps --wheel-dir "$WORK/dist" "$WORK/src"
WHEEL="$(ls "$WORK"/dist/backprop_studio-*.whl)"
echo "built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
check wheel "$WHEEL"

step "install it into a fresh venv"
"$PYTHON" -m venv "$WORK/venv"
BIN="$WORK/venv/bin"
quiet "$BIN/python" -m pip install --upgrade pip
quiet "$BIN/python" -m pip install "$WHEEL"

step "run from $WORK/run, away from the checkout"
cd "$WORK/run"
unset PYTHONPATH
export QT_QPA_PLATFORM=offscreen
PYTHON="$BIN/python"  # the checks below run inside the installed venv
XOR="$(check installed "$REPO")"
echo "installed example: $XOR"

step "studio offscreen: --self-check and a screenshot"
"$BIN/backprop-studio" "$XOR" --self-check --screenshot "$WORK/run/studio.png" --size 1280x800
check png "$WORK/run/studio.png"

step "check and train xor headless"
"$BIN/backprop" check "$XOR" >/dev/null
"$BIN/backprop" train "$XOR" -o xor.bpmodel --metrics xor.jsonl 2>&1 | tr '\r' '\n' | tail -1
test -s xor.bpmodel
check trained xor.jsonl

step "lessons"
"$BIN/backprop" lesson list
"$BIN/backprop" lesson run 1 >lesson1.txt 2>&1 || { cat lesson1.txt; exit 1; }
tail -3 lesson1.txt
step "passed"
