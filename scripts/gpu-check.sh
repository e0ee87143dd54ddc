#!/usr/bin/env bash
# The one GPU check of issue 17: parity of every CUDA path against CPU float64 references, interop with HF
# transformers + peft in both directions, the benchmark suites on CUDA bf16 with PyTorch eager on the same workloads,
# and one markdown report. Runs inside the bundle scripts/publish-gpu-check.sh makes (no .NET SDK needed), or from the
# repository with that bundle under artifacts/gpu-check/. Every step is time-boxed and a failure is recorded in the
# report, never fatal; the whole run stays under --budget seconds (default 470, i.e. under 8 minutes).
#
#   gpu-check.sh [--device cuda|cpu] [--dry-run] [--out DIR] [--budget SECONDS] [--libtorch DIR] [--bundle DIR]
#
#   --dry-run   the CPU rehearsal: --device cpu, small shapes, a few benchmark rows, model7b skipped
#   --out       result folder (default: $OUT if set, else ./gpu-report); the report is DIR/gpu-report.md
#   --libtorch  folder with libtorch.so (default: the pip PyTorch's torch/lib; on CPU the NuGet libtorch-cpu if present)
# Environment: PYTHON (default: the first of python3, /usr/bin/python3 that imports torch); BOX_<STEP>=seconds
# overrides a step's time box (steps: PARITY EXPORT PYCHECK PYEXPORT IMPORT BENCH TORCH M7B_NF4 M7B_DENSE).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
device=cuda dry=0 out=${OUT:-./gpu-report} budget=470 libtorch=${LIBTORCH_DIR:-} bundle=${GPU_CHECK_BUNDLE:-}
. "$here/gpu/common.sh"
parse_options gpu-check.sh 2,14p "$@" || exit $?
bundle=$(find_bundle gpu-check.sh "$bundle" LongContext.GpuCheck LongContext.Benchmarks) || exit 2
bin=$bundle/bin
python=$(find_python)
[ -n "$python" ] || { echo "gpu-check.sh: no python with torch found; set PYTHON" >&2; exit 2; }
libtorch=$(find_libtorch gpu-check.sh "$device" "$libtorch" "$python") || exit 2

mkdir -p "$out/logs" "$out/bench"
out=$(cd "$out" && pwd)
rm -f "$out/steps.tsv" "$out/parity.jsonl" "$out/interop.jsonl" "$out/torch.jsonl"
[ -f "$bundle/VERSION" ] && cp "$bundle/VERSION" "$out/VERSION"
export LD_LIBRARY_PATH="$libtorch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" LIBTORCH_DIR=$libtorch
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 PYTHONUNBUFFERED=1
fixtures=$bundle/fixtures
[ -d "$fixtures" ] || fixtures="$here/../tests/LongContext.Tests/Fixtures"
start=$(date +%s)
deadline=$((start + budget))
reserve=15   # seconds kept for the report

check() { "$bin/LongContext.GpuCheck" "$@" --fixtures "$fixtures"; }
export bin fixtures out device
export -f check
quick=(); [ "$dry" = 1 ] && quick=(--quick)
interop="$out/interop"
rm -rf "$interop"

# 1. parity on the device
run_step parity 100 check parity --device "$device" "${quick[@]}" --results "$out/parity.jsonl"
# 2. interop (CPU on both sides: file formats and float32 logits, deterministic)
run_step export 30 check interop-export --device cpu --out "$interop/dotnet" --results "$out/interop.jsonl"
run_step pycheck 60 "$python" "$bundle/gpu/interop.py" check-dotnet "$interop/dotnet" --results "$out/interop.jsonl"
run_step pyexport 60 "$python" "$bundle/gpu/interop.py" export-peft --dotnet "$interop/dotnet" --out "$interop/peft" --results "$out/interop.jsonl"
run_step import 30 check interop-import --device cpu --in "$interop/peft" --results "$out/interop.jsonl"
# dry run only: the import path over .NET's own export (a round trip, since peft is not installed there)
[ "$dry" = 1 ] && run_step import-self 30 check interop-import --device cpu --in "$interop/dotnet" --results "$out/interop.jsonl"

# 3. benchmarks: short BenchmarkDotNet jobs (job options from the command line mutate the suites' in-process job)
bench() { local run=$1; shift; mkdir -p "$out/bench/$run" && cd "$out/bench/$run" && "$bin/LongContext.Benchmarks" "$@" --device "$device"; }
export -f bench
if [ "$device" = cuda ]; then
  filters=()
  for n in 4096 16384 32768; do filters+=("*.AttentionBenchmarks.*(N: $n, KvHeads: 32, Pass: ForwardBackward)"); done
  filters+=('*.RopeBenchmarks.*' '*.LoraBenchmarks.*' '*.Nf4DequantizeBenchmarks.*' '*.QLoraLinearBenchmarks.*' '*.DecoderLayerBenchmarks.*')
  run_step bench 150 bench micro attention,rope,lora,quant,layer --filter "${filters[@]}" --warmupCount 2 --iterationCount 7 --iterationTime 100
  run_step torch 50 "$python" "$bundle/gpu/torch_bench.py" --device cuda --budget 40 --out "$out/torch.jsonl"
  # model7b: one process per base so each Dev MiB reading (a process high-water mark) belongs to that base
  m7b=(--warmupCount 0 --iterationCount 3 --strategy ColdStart)
  run_step m7b-nf4 75 bench model7b-nf4 model7b --filter '*.Model7bBenchmarks.Full(*Base: Nf4)' '*.Model7bBenchmarks.S2NoWrap(*Base: Nf4)' "${m7b[@]}"
  run_step m7b-dense 75 bench model7b-dense model7b --filter '*.Model7bBenchmarks.Full(*Base: Dense)' '*.Model7bBenchmarks.S2NoWrap(*Base: Dense)' "${m7b[@]}"
else
  run_step bench 150 bench micro attention,rope,lora,quant --filter '*.AttentionBenchmarks.*(N: 1024, KvHeads: 8, Pass: Forward)' \
    '*.RopeBenchmarks.*' '*.LoraBenchmarks.*(Pass: Forward)' '*.Nf4DequantizeBenchmarks.*(DoubleQuant: False)' --strategy ColdStart --warmupCount 1 --iterationCount 2
  run_step torch 50 "$python" "$bundle/gpu/torch_bench.py" --device cpu --quick --budget 40 --out "$out/torch.jsonl"
  skip_step m7b-nf4 "the 7B step runs on CUDA only"
  skip_step m7b-dense "the 7B step runs on CUDA only"
fi

# 4. the report
cmd="gpu-check.sh --device $device$([ "$dry" = 1 ] && echo ' --dry-run') --budget $budget"
"$python" "$bundle/gpu/report.py" "$out" --command "$cmd" || echo "gpu-check.sh: report.py failed; raw results are in $out" >&2
echo "gpu-check.sh: done in $(( $(date +%s) - start )) s; report: $out/gpu-report.md"
