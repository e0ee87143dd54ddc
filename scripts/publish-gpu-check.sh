#!/usr/bin/env bash
# Publishes the GPU check bundle of issue 17 for a linux-x64 machine with a CUDA PyTorch and no .NET SDK:
#   scripts/publish-gpu-check.sh [OUT_DIR]        (default OUT_DIR: artifacts/gpu-check)
# Produces OUT_DIR/longcontext-gpu-check/ and OUT_DIR/longcontext-gpu-check.tar.xz (< 60 MB) holding
#   bin/       the benchmarks (benchmarks/LongContext.Benchmarks), the check program (tools/LongContext.GpuCheck) and the
#              main program with its data (samples/LongContext.Demo, for scale-probe.sh), self-contained and published
#              into ONE folder so they share one .NET runtime; no libtorch inside
#              (-p:LibTorchPackage=false: the GPU machine's pip PyTorch provides it through LD_LIBRARY_PATH, as
#              scripts/run-cuda.sh does); invariant globalization (no libicu needed); BenchmarkDotNet's disassembler
#              and profiler dependencies left out (-p:SlimBenchmarkDeps=true), with the runtime's debugger/dump helpers
#   fixtures/  the reference data the checks read (tests/LongContext.Tests/Fixtures without the generators)
#   gpu/       the Python scripts (interop, PyTorch eager benchmarks, report) and common.sh (shared by the two scripts)
#   gpu-check.sh (issue 17's check), scale-probe.sh (issue 16's larger base), VERSION (commit and date)
# On the GPU machine: tar xJf longcontext-gpu-check.tar.xz && longcontext-gpu-check/gpu-check.sh --out DIR
#                     (and, in a second call, longcontext-gpu-check/scale-probe.sh --out DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-artifacts/gpu-check}")
name=longcontext-gpu-check
bundle="$out/$name"
rm -rf "$bundle" "$out/$name.tar.xz"
mkdir -p "$bundle/bin" "$bundle/gpu" "$bundle/fixtures"
common=(-c Release -r linux-x64 --self-contained true -p:LibTorchPackage=false -p:DebugType=none -p:GenerateDocumentationFile=false
        -p:InvariantGlobalization=true -p:SatelliteResourceLanguages=en)
dotnet publish benchmarks/LongContext.Benchmarks "${common[@]}" -p:SlimBenchmarkDeps=true -o "$bundle/bin"
dotnet publish tools/LongContext.GpuCheck "${common[@]}" -o "$bundle/bin"
dotnet publish samples/LongContext.Demo "${common[@]}" -o "$bundle/bin"
if ls "$bundle/bin" | grep -q -E '^lib(torch|c10)'; then
  echo "publish-gpu-check.sh: a libtorch library was published (expected none with LibTorchPackage=false)" >&2
  exit 1
fi
# Never loaded by these programs: crash-dump writer, debugger and DAC libraries, the LTTng trace provider, XML docs,
# Windows-only native helpers. Removed after the fact; the hosts do not look for them at startup.
# The shipped base (bin/data/base) is only the demo's default; scale-probe.sh pretrains its own: left out (1.6 MB of
# the tarball, which travels with the repository under the device's 64 MiB carry).
rm -rf "$bundle/bin/data/base"
rm -rf "$bundle/bin/createdump" "$bundle/bin/libmscordbi.so" "$bundle/bin/libmscordaccore.so" \
       "$bundle/bin/libcoreclrtraceptprovider.so" "$bundle/bin/amd64" "$bundle/bin/x86" "$bundle/bin"/*.xml
for d in rope s2attn quant models; do
  [ -d "tests/LongContext.Tests/Fixtures/$d" ] && cp -r "tests/LongContext.Tests/Fixtures/$d" "$bundle/fixtures/"
done
cp tests/LongContext.Tests/Fixtures/README.md "$bundle/fixtures/"
cp scripts/gpu/*.py scripts/gpu/*.sh "$bundle/gpu/"
cp scripts/gpu-check.sh scripts/scale-probe.sh scripts/attention-logits.py "$bundle/"
chmod +x "$bundle/gpu-check.sh" "$bundle/scale-probe.sh" "$bundle/bin/LongContext.Benchmarks" "$bundle/bin/LongContext.GpuCheck" "$bundle/bin/LongContext.Demo"
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo "+uncommitted changes" || true)
echo "commit $(git rev-parse --short HEAD)$dirty ($(git log -1 --format=%cs)), published $(date -u +%Y-%m-%dT%H:%MZ)" > "$bundle/VERSION"
# Smoke the published programs against no libtorch at all: usage must print (nothing native is loaded for it).
"$bundle/bin/LongContext.GpuCheck" --help > /dev/null
"$bundle/bin/LongContext.Demo" --help > /dev/null
tar -C "$out" -cf - "$name" | xz -9 -T0 > "$out/$name.tar.xz"
du -sh "$bundle" | sed 's/^/bundle folder: /'
ls -l "$out/$name.tar.xz" | awk '{printf "tarball: %s (%.1f MB)\n", $NF, $5/1e6}'
size=$(stat -c %s "$out/$name.tar.xz")
if [ "$size" -ge 60000000 ]; then echo "publish-gpu-check.sh: the tarball is $size bytes; the budget is 60 MB" >&2; exit 1; fi
# The device call carries the working tree (tracked files and untracked ones git does not ignore) plus this tarball,
# 64 MiB in all: say so here, on the CPU machine, rather than in a refused device call.
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
limit=$((64 * 1024 * 1024))
awk -v t="$tree" -v s="$size" -v l="$limit" 'BEGIN { printf "device carry: working tree %.1f MB + tarball %.1f MB = %.1f MB of %.1f MB (64 MiB)\n", t/1e6, s/1e6, (t+s)/1e6, l/1e6 }'
if [ $((tree + size)) -ge "$limit" ]; then
  echo "publish-gpu-check.sh: the working tree ($tree bytes) and the tarball ($size bytes) exceed the device's 64 MiB carry; shrink one before a device call" >&2
  exit 1
fi
