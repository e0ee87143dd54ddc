#!/usr/bin/env bash
# Issue 16's scale probe: does a larger base, pretrained on a GPU, make extrapolation clearly worse than PI, as in the
# PI paper? Every CPU-sized variant put extrapolation within a few % of PI + LoRA (README, "Variants measured"). This
# pretrains one larger base with the demo's own `pretrain` command on the device, then runs the demo's comparison on
# it, and keeps the results and the base. Runs inside the bundle scripts/publish-gpu-check.sh makes (no .NET SDK
# needed), or from the repository with that bundle under artifacts/gpu-check/. The sizes are fixed here, written
# down before any run (README, "The scale probe"); they are not tuned to the result.
#
#   scale-probe.sh [--device cuda|cpu] [--dry-run] [--out DIR] [--budget SECONDS] [--libtorch DIR] [--bundle DIR]
#
#   --dry-run   the CPU rehearsal: --device cpu, a tiny base and demo --quick sizes (the same steps and files)
#   --out       result folder (default: $OUT if set, else ./scale-probe); at most 8 files come back from a device run:
#               scale-report.md (with probe A's attention tables when python has torch and sentencepiece),
#               results.csv, context_extension.png, logs.tar.xz, base.tar.xz (split in 15 MB parts)
#   --budget    seconds for the whole run (default 330): the pretraining gets 55 %, the demo the rest (BOX_PRETRAIN,
#               BOX_DEMO override); to follow gpu-check.sh in the same device call, give each a part of the call's limit
#   --libtorch  folder with libtorch.so (default: the pip PyTorch's torch/lib; on CPU the NuGet libtorch-cpu if present)
# Exit code 0 when the steps ran (whatever the pattern; the attention step may be skipped), 1 when one failed or timed
# out, 2 for bad arguments.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
device=cuda dry=0 out=${OUT:-./scale-probe} budget=330 libtorch=${LIBTORCH_DIR:-} bundle=${GPU_CHECK_BUNDLE:-}
. "$here/gpu/common.sh"
parse_options scale-probe.sh 2,19p "$@" || exit $?
bundle=$(find_bundle scale-probe.sh "$bundle" LongContext.Demo) || exit 2
libtorch=$(find_libtorch scale-probe.sh "$device" "$libtorch" "$(find_python)") || exit 2

# The probe's sizes. The base: hidden 384, 6 layers, 6 heads of 64 dimensions, MLP 1024 (about 11 M parameters, 12x
# the shipped base), pretrained at L = 256 for 1500 updates x 32 rows (12 M tokens), lr 1e-3; then the demo's default
# fine-tuning (150 updates x 4 rows of 4L = 1024, lr 1e-3, LoRA r 8) for the five methods the expectations judge.
if [ "$dry" = 1 ]; then
  pretrain=(--hidden 64 --layers 2 --heads 2 --intermediate 128 --context 128 --steps 10 --batch 2 --lr 1e-3)
  demo=(--quick --steps 2 --passkey-trials 1)
else
  pretrain=(--hidden 384 --layers 6 --heads 6 --intermediate 1024 --context 256 --steps 1500 --batch 32 --lr 1e-3)
  demo=()
fi
methods=none,pi,extrapolation,pi-lora,longlora

mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -f "$out/steps.tsv" "$out"/base.tar.xz*
export LD_LIBRARY_PATH="$libtorch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" LIBTORCH_DIR=$libtorch
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
start=$(date +%s)
deadline=$((start + budget))
reserve=10   # seconds kept for packing the results

app=$bundle/bin/LongContext.Demo
# The demo exits 3 when it ran to the end and the pattern was not reproduced: a measurement, so the step is ok.
probe_demo() { "$app" demo "$@"; local rc=$?; [ "$rc" -eq 3 ] && { echo "(exit code 3: the expected pattern was not reproduced; the numbers are above)"; return 0; }; return "$rc"; }
export app
export -f probe_demo
# The pretraining gets 55 % of the budget, the demo what is left (BOX_PRETRAIN / BOX_DEMO override).
run_step pretrain $((budget * 55 / 100)) "$app" pretrain --device "$device" --seed 1 "${pretrain[@]}" --output "$work/base"
if [ -s "$work/base/manifest.json" ]; then
  run_step demo "$budget" probe_demo --device "$device" --seed 1 --base "$work/base" --methods "$methods" "${demo[@]}" --output "$work/demo"
else
  skip_step demo "no base was pretrained"
fi
# Probe A on the larger base (README, "What the attention does past L"): attention logits and far attention mass by
# distance band, from an independent PyTorch forward whose perplexity must match the demo's within 3 %; the base, then
# the extrapolation and PI + LoRA adapters. Runs in what time the demo left (skipped otherwise); needs sentencepiece.
probe_attention() {
  "$python" "$bundle/attention-logits.py" --base "$work/base" --kjv "$bundle/bin/data/kjv.txt" --results "$work/demo" \
    --out "$work/attention-base.md" || return 1
  local m
  for m in extrapolation pi-lora; do
    [ -d "$work/demo/runs/$m/adapter" ] || continue
    "$python" "$bundle/attention-logits.py" --base "$work/base" --kjv "$bundle/bin/data/kjv.txt" --results "$work/demo" \
      --adapter "$work/demo/runs/$m/adapter" --out "$work/attention-$m.md" || return 1
  done
}
export -f probe_attention
export python=$(find_python) work bundle
if [ ! -s "$work/demo/results.csv" ]; then
  skip_step attention "no demo results"
elif [ -z "$python" ] || ! "$python" -c 'import sentencepiece' >/dev/null 2>&1; then
  skip_step attention "no python with torch and sentencepiece"
else
  run_step attention 90 probe_attention
fi

# Results: the demo's files, the logs, the base (so a CPU session can run more methods on it).
for f in results.csv context_extension.png; do [ -f "$work/demo/$f" ] && cp "$work/demo/$f" "$out/$f"; done
{
  echo "# Scale probe ($device$([ "$dry" = 1 ] && echo ', dry run'))"
  echo
  [ -f "$bundle/VERSION" ] && echo "Bundle: $(cat "$bundle/VERSION")"
  echo "Host: $(nproc) cores; $(command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1 || echo 'no nvidia-smi')."
  echo "Commands: \`pretrain ${pretrain[*]}\`, then \`demo --base BASE --methods $methods ${demo[*]}\`; total $(( $(date +%s) - start )) s of a $budget s budget."
  echo
  echo "| step | status | exit code | seconds |"
  echo "|---|---|---:|---:|"
  awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$out/steps.tsv"
  echo
  echo "## Base"
  grep -E 'held-out ppl|Base written' "$out/logs/pretrain.log" 2>/dev/null | tail -2
  [ -f "$work/base/manifest.json" ] && { echo; echo '```json'; cat "$work/base/manifest.json"; echo '```'; }
  echo
  echo "## Demo"
  if [ -f "$work/demo/results.md" ]; then cat "$work/demo/results.md"; else echo "(no results.md; see logs/demo.log)"; fi
  for f in "$work"/attention-base.md "$work"/attention-extrapolation.md "$work"/attention-pi-lora.md; do
    [ -f "$f" ] && { echo; sed 's/^# /## /' "$f"; }
  done
} > "$out/scale-report.md"
tar -C "$out" -cJf "$out/logs.tar.xz" logs steps.tsv && rm -rf "$out/logs" "$out/steps.tsv"
if [ -s "$work/base/manifest.json" ]; then
  tar -C "$work" -cf - base | xz -3 -T0 > "$out/base.tar.xz"
  size=$(stat -c %s "$out/base.tar.xz")
  if [ "$size" -gt 15000000 ]; then split -b 15000000 -d "$out/base.tar.xz" "$out/base.tar.xz.part-" && rm "$out/base.tar.xz"; fi
fi
ls -l "$out" | sed 's/^/    /'
echo "scale-probe.sh: done in $(( $(date +%s) - start )) s; report: $out/scale-report.md"
grep -vE '^attention	skipped' <(tar -xJOf "$out/logs.tar.xz" steps.tsv) | grep -qE '	(failed|timed out|skipped)' && exit 1
exit 0
