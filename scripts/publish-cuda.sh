#!/usr/bin/env bash
# Publishes the benchmarks self-contained for linux-x64 WITHOUT a libtorch NuGet package (-p:LibTorchPackage=false),
# so they run on the libtorch of a pip-installed PyTorch (CUDA builds included; see scripts/run-cuda.sh).
#   scripts/publish-cuda.sh [OUT_DIR]      (default OUT_DIR: artifacts/bench-cuda)
# Produces OUT_DIR/LongContext.Benchmarks/ (the binary plus run-cuda.sh) and OUT_DIR/LongContext.Benchmarks-linux-x64.tar.gz.
# Copy the tarball to the GPU machine, unpack it, and run: LongContext.Benchmarks/run-cuda.sh <suite> [options].
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-artifacts/bench-cuda}")
app="$out/LongContext.Benchmarks"
rm -rf "$app"
mkdir -p "$out"
dotnet publish benchmarks/LongContext.Benchmarks -c Release -r linux-x64 --self-contained true \
  -p:LibTorchPackage=false -p:DebugType=none -o "$app"
if ls "$app" | grep -q -E '^lib(torch|c10)'; then
  echo "publish-cuda.sh: a libtorch library was published (expected none with LibTorchPackage=false)" >&2
  exit 1
fi
cp scripts/run-cuda.sh "$app/run-cuda.sh"
chmod +x "$app/run-cuda.sh" "$app/LongContext.Benchmarks"
tar -C "$out" -czf "$out/LongContext.Benchmarks-linux-x64.tar.gz" LongContext.Benchmarks
du -sh "$app" | sed 's/^/published folder: /'
ls -l "$out/LongContext.Benchmarks-linux-x64.tar.gz" | awk '{printf "tarball: %s (%.1f MB)\n", $NF, $5/1e6}'
