#!/usr/bin/env bash
# CI: publishes the GPU bundle (scripts/publish-gpu-check.sh: benchmarks, check program, main program, no libtorch)
# and rehearses issue 16's scale probe on CPU (scripts/scale-probe.sh --dry-run: a tiny base pretrained by the
# published main program, then its demo on that base), so the bundle a GPU session carries is known to work.
# About 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash scripts/publish-gpu-check.sh "$out/bundle" > "$out/publish.log" 2>&1 || { tail -n 30 "$out/publish.log" >&2; echo "smoke-scale-probe: publishing the bundle failed" >&2; exit 1; }
tail -n 2 "$out/publish.log"
bash "$out/bundle/longcontext-gpu-check/scale-probe.sh" --dry-run --out "$out/probe" || { echo "smoke-scale-probe: the dry run failed" >&2; exit 1; }
for f in scale-report.md results.csv context_extension.png logs.tar.xz base.tar.xz; do
  [ -s "$out/probe/$f" ] || { echo "smoke-scale-probe: the dry run wrote no $f" >&2; exit 1; }
done
[ "$(wc -l < "$out/probe/results.csv")" -eq 16 ] || { echo "smoke-scale-probe: results.csv should hold 5 methods x 3 lengths" >&2; exit 1; }
grep -q '| demo | ok |' "$out/probe/scale-report.md" || { echo "smoke-scale-probe: the report does not show the demo step ok" >&2; exit 1; }
# Probe A's step runs where python has torch and sentencepiece (its perplexity must match the demo's), else is skipped.
grep -qE '\| attention \| (ok|skipped \(no python with torch and sentencepiece\)) \|' "$out/probe/scale-report.md" \
  || { echo "smoke-scale-probe: the attention step neither ran nor was skipped for want of python" >&2; exit 1; }
bash "$out/bundle/longcontext-gpu-check/scale-probe.sh" --device tpu >/dev/null 2>&1 && { echo "smoke-scale-probe: a bad --device should fail" >&2; exit 1; }
echo "smoke-scale-probe: passed"
