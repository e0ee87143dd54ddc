#!/usr/bin/env bash
# Runs the published benchmarks (scripts/publish-cuda.sh) on CUDA over an external libtorch, e.g. the one inside a
# pip-installed PyTorch. TorchSharp 0.107.0 binds to it through LD_LIBRARY_PATH; the program calls
# torch.InitializeDeviceType(DeviceType.CUDA) for --device cuda.
#   run-cuda.sh [--libtorch DIR] [--bin DIR] <suite>|all [options]     e.g.  run-cuda.sh attention --filter '*S2*'
#   LIBTORCH_DIR (or --libtorch): folder holding libtorch.so, libtorch_cuda.so, libc10.so
#     default: $(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
#   BENCH_BIN (or --bin): folder of the published binary; default: this script's folder when the binary is beside it,
#     else artifacts/bench-cuda/LongContext.Benchmarks under the repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
libtorch=${LIBTORCH_DIR:-}
bin=${BENCH_BIN:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --libtorch) libtorch=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ -z "$bin" ]; then
  if [ -x "$here/LongContext.Benchmarks" ]; then bin=$here; else bin="$here/../artifacts/bench-cuda/LongContext.Benchmarks"; fi
fi
if [ ! -x "$bin/LongContext.Benchmarks" ]; then
  echo "run-cuda.sh: no published binary at $bin/LongContext.Benchmarks; run scripts/publish-cuda.sh first or pass --bin" >&2
  exit 2
fi
if [ -z "$libtorch" ]; then
  libtorch="$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib" || {
    echo "run-cuda.sh: no libtorch folder given and 'import torch' failed; pass --libtorch DIR or set LIBTORCH_DIR" >&2
    exit 2
  }
fi
for lib in libtorch.so libc10.so libtorch_cuda.so; do
  if [ ! -e "$libtorch/$lib" ]; then
    echo "run-cuda.sh: $libtorch/$lib not found (a CUDA build of libtorch is needed)" >&2
    exit 2
  fi
done
export LD_LIBRARY_PATH="$libtorch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LONGCONTEXT_DEVICE=cuda
echo "run-cuda.sh: libtorch from $libtorch"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/run-cuda.sh: GPU /' || true
exec "$bin/LongContext.Benchmarks" --device cuda "$@"
