#!/usr/bin/env bash
# CI: the GPU check program's CPU parity mode (issue 17) on small shapes: every parity group against its CPU float64
# references, exactly the code a GPU session runs with --device cuda. Exits non-zero on any failed check. About 40-60 s.
set -euo pipefail
cd "$(dirname "$0")/.."
project=tools/LongContext.GpuCheck
if [ -f "$project/bin/Release/net10.0/LongContext.GpuCheck.dll" ]; then build=--no-build; else build=; fi
timeout 150 dotnet run -c Release $build --project "$project" -- parity --device cpu --quick
