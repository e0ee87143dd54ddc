#!/usr/bin/env bash
# Produces every CPU table of BENCHMARKS.md (full BenchmarkDotNet mode, float32). Run on a quiet machine: about 10 min
# on 2 cores. Reports land in BenchmarkDotNet.Artifacts/cpu/results/ (*-report-github.md, *-report.csv); this script
# also concatenates them, with the machine description, into artifacts/bench-cpu.md.
#   scripts/bench-cpu.sh [suite ...]      (default: attention rope lora quant layer)
set -euo pipefail
cd "$(dirname "$0")/.."
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(attention rope lora quant layer)
dotnet build benchmarks/LongContext.Benchmarks -c Release -warnaserror
rm -rf BenchmarkDotNet.Artifacts/cpu
mkdir -p artifacts
for suite in "${suites[@]}"; do
  echo "=== $suite ($(date -u +%H:%M:%S))"
  dotnet run -c Release --no-build --project benchmarks/LongContext.Benchmarks -- "$suite" --device cpu
done
{
  echo "# CPU benchmark run $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores visible), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
  echo "- OS: $(. /etc/os-release && echo "$PRETTY_NAME"), .NET SDK $(dotnet --version), TorchSharp 0.107.0, libtorch-cpu 2.10.0"
  echo "- command: scripts/bench-cpu.sh ${suites[*]}"
  for f in BenchmarkDotNet.Artifacts/cpu/results/*-report-github.md; do
    echo
    echo "## $(basename "$f" -report-github.md)"
    sed -n '/^|/,$p' "$f"
  done
} > artifacts/bench-cpu.md
echo "tables: artifacts/bench-cpu.md"
