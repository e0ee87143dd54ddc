#!/usr/bin/env bash
# Smoke test of the main program: runs the context-extension demo in its reduced (--quick) mode. The demo itself
# exits non-zero unless, at 4x the training context, PI + S2-Attn + LoRA beats the unextended model by 20 points
# and beats extension without PI; here we also check that it wrote its CSV files and plot.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
dotnet run -c Release --project samples/LongContext.Demo -- --quick --output "$out"
for f in accuracy_by_length.csv training_curves.csv context_extension.png; do
  if [ ! -s "$out/$f" ]; then
    echo "smoke-demo: the demo did not write $f" >&2
    exit 1
  fi
done
echo "smoke-demo: passed in $(( $(date +%s) - start ))s"
