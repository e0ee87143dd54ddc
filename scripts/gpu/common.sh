# Shared by gpu-check.sh and scale-probe.sh (sourced, not run): finding the bundle, Python and libtorch, and running
# time-boxed steps that record one line each in $out/steps.tsv. The sourcing script sets `here` (its own folder)
# before sourcing, and `out`, `deadline` and `reserve` before the first run_step.

# parse_options NAME HELP_LINES ARGS...: the options both scripts take, over the defaults the caller set in device,
# dry, out, budget, libtorch and bundle. --help prints the script's HELP_LINES (a sed range such as 2,16p) and returns
# exits 0 (parse_options runs in the calling shell); a bad option or value returns 2 after a message.
parse_options() {
  local name=$1 help=$2; shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --device) device=$2; shift 2 ;;
      --dry-run) dry=1 device=cpu; shift ;;
      --out) out=$2; shift 2 ;;
      --budget) budget=$2; shift 2 ;;
      --libtorch) libtorch=$2; shift 2 ;;
      --bundle) bundle=$2; shift 2 ;;
      -h|--help) sed -n "$help" "$here/$name"; exit 0 ;;
      *) echo "$name: unknown option '$1' (see --help)" >&2; return 2 ;;
    esac
  done
  case "$device" in cuda|cpu) ;; *) echo "$name: --device must be cuda or cpu; got '$device'" >&2; return 2 ;; esac
  case "$budget" in ''|*[!0-9]*) echo "$name: --budget must be a whole number of seconds; got '$budget'" >&2; return 2 ;; esac
}

# find_bundle NAME BUNDLE APP...: prints the bundle folder (BUNDLE if given; else the script's own folder when it holds
# bin/APP, else artifacts/gpu-check/longcontext-gpu-check under the repository) after checking each APP is there.
find_bundle() {
  local name=$1 bundle=$2 app; shift 2
  if [ -z "$bundle" ]; then
    if [ -x "$here/bin/$1" ]; then bundle=$here; else bundle="$here/../artifacts/gpu-check/longcontext-gpu-check"; fi
  fi
  bundle=$(cd "$bundle" 2>/dev/null && pwd) || { echo "$name: no bundle at '$bundle'; run scripts/publish-gpu-check.sh first or pass --bundle" >&2; return 2; }
  for app in "$@"; do
    [ -x "$bundle/bin/$app" ] || { echo "$name: $bundle/bin/$app is missing; the bundle is incomplete (re-run scripts/publish-gpu-check.sh)" >&2; return 2; }
  done
  echo "$bundle"
}

# find_python: prints PYTHON if set, else the first of python3, /usr/bin/python3 that imports torch; nothing if none.
find_python() {
  local p
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1; then echo "$p"; return; fi
  done
}

# find_libtorch NAME DEVICE LIBTORCH PYTHON: prints the libtorch folder: LIBTORCH if given; on cpu the NuGet
# libtorch-cpu when restored; else PYTHON's torch/lib. Checks libtorch.so (and libtorch_cuda.so for cuda).
find_libtorch() {
  local name=$1 device=$2 libtorch=$3 python=$4 nuget
  if [ -z "$libtorch" ]; then
    nuget=$(ls -d "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/libtorch-cpu-linux-x64/*/runtimes/linux-x64/native 2>/dev/null | tail -1)
    if [ "$device" = cpu ] && [ -n "$nuget" ]; then libtorch=$nuget
    elif [ -n "$python" ]; then libtorch="$("$python" -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib"
    else echo "$name: no libtorch: no python with torch found (set PYTHON) and no --libtorch DIR given" >&2; return 2; fi
  fi
  [ -e "$libtorch/libtorch.so" ] || { echo "$name: $libtorch/libtorch.so not found; pass --libtorch DIR" >&2; return 2; }
  if [ "$device" = cuda ] && [ ! -e "$libtorch/libtorch_cuda.so" ]; then
    echo "$name: $libtorch has no libtorch_cuda.so (a CUDA build of PyTorch is needed for --device cuda)" >&2; return 2
  fi
  echo "$libtorch"
}

# run_step NAME BOX_SECONDS COMMAND...: runs in its log, within min(box, time left), records one line in steps.tsv.
# BOX_<NAME> (upper case, - as _) overrides the box.
run_step() {
  local name=$1 box=$2; shift 2
  local override="BOX_$(echo "$name" | tr 'a-z-' 'A-Z_')"
  box=${!override:-$box}
  local left=$((deadline - $(date +%s) - reserve)) limit=$box log="logs/$name.log" rc status t0 t1
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 5 ]; then
    printf '%s\tskipped (no time left)\t-\t0\t-\n' "$name" >> "$out/steps.tsv"
    echo "=== $name: skipped, no time left"
    return
  fi
  echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)"
  t0=$(date +%s%N)
  # bash -c so that exported shell functions run under timeout too
  timeout --kill-after=10 "$limit" bash -c '"$@"' step "$@" > "$out/$log" 2>&1
  rc=$?
  t1=$(date +%s%N)
  case $rc in
    0) status=ok ;;
    124|137) status="timed out after ${limit}s" ;;
    *) status=failed ;;
  esac
  local tenths=$(( (t1 - t0) / 100000000 ))
  printf '%s\t%s\t%s\t%d.%d\t%s\n' "$name" "$status" "$rc" $((tenths / 10)) $((tenths % 10)) "$log" >> "$out/steps.tsv"
  tail -n 3 "$out/$log" | sed 's/^/    /'
}

# skip_step NAME WHY: records a step that did not run.
skip_step() { printf '%s\tskipped (%s)\t-\t0\t-\n' "$1" "$2" >> "$out/steps.tsv"; echo "=== $1: skipped ($2)"; }
