#!/usr/bin/env bash
# CI: the benchmarks' short mode. Every suite once on tiny CPU sizes through the same benchmark bodies, plus checks of
# the eager baselines against masked references and of live-tensor growth; exits non-zero on any error. About 10-20 s.
# Then a short soak: 1,000 LoRA and 1,000 QLoRA training steps of a tiny model, failing if RSS grows more than 5 %
# after step 500 or live tensors grow (BENCHMARKS.md has the 10,000-step runs). About 10-30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
project=benchmarks/LongContext.Benchmarks
if [ -f "$project/bin/Release/net10.0/LongContext.Benchmarks.dll" ]; then build=--no-build; else build=; fi
LONGCONTEXT_DEVICE=cpu timeout 110 dotnet run -c Release $build --project "$project" -- all --smoke
timeout 300 dotnet run -c Release --no-build --project "$project" -- soak --steps 1000 --warmup 500
