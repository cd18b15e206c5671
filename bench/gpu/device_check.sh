#!/usr/bin/env bash
# bench/gpu/device_check.sh: webgpu correctness and throughput on a real GPU next to PyTorch CUDA,
# in one run, from the repository root. See bench/gpu/README.md.
#
#   bash bench/gpu/device_check.sh            # device machine: NVIDIA GPU, shapes "full"
#   bash bench/gpu/device_check.sh --local    # here: lavapipe + PyTorch CPU, shapes "local"
#
# Device mode expects what the run tool carries: .gl/*.deb (Vulkan loader, GL dispatch),
# .devcarry/deno.xz, .devcarry/node_modules.tar.xz (node_modules without the deno binary) and
# kernels/build (the wasm kernels for the cross-backend test). Each part runs under its own
# `timeout`, and a global deadline (GPU_CHECK_DEADLINE seconds, default 540) skips what would
# not fit, so the report is always written. Results: $OUT (default bench/out/gpu):
# report.md, report.json, device_check.log and each part's JSON / log.
# For dry runs of device mode: GPU_CHECK_PROFILE (shapes.json profile), GPU_CHECK_PYTHON,
# GPU_CHECK_ALLOW_SOFTWARE=1 (accept a fallback adapter).
set -u
LOCAL=${GPU_CHECK_LOCAL:-0}
for a in "$@"; do
  case "$a" in
    --local) LOCAL=1 ;;
    -h | --help)
      sed -n '2,16p' "$0"
      exit 0
      ;;
    *)
      echo "device_check.sh: unknown argument $a (only --local)" >&2
      exit 2
      ;;
  esac
done
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
OUT=${OUT:-$ROOT/bench/out/gpu}
mkdir -p "$OUT"
rm -f "$OUT"/{adapter,ours_micro,ours_profile,ours_pretrain,torch_micro,torch_pretrain,report}.json \
  "$OUT"/{tests.log,parts.tsv,nvidia-smi.txt,report.md}
exec > >(tee "$OUT/device_check.log") 2>&1
TEE_PID=$!
T0=$(date +%s)
DEADLINE=${GPU_CHECK_DEADLINE:-540}
say() { echo "[check $(($(date +%s) - T0))s] $*"; }

if [ "$LOCAL" = 1 ]; then
  PROFILE=local
  PY=${GPU_CHECK_PYTHON:-/usr/bin/python3}
  # part timeouts (s): tests, ours micro, torch micro, ours profile, ours pretrain, torch pretrain
  TT=(300 120 60 150 200 90)
else
  PROFILE=full
  PY=${GPU_CHECK_PYTHON:-$(command -v python3)}
  TT=(120 90 60 120 180 120)
fi
# Timing parts share the machine-wide bench lock, unless a caller (bench/main.ts) holds it.
LOCK=()
if [ "${VIRTEX_BENCH_LOCKED:-0}" != 1 ] && command -v flock >/dev/null; then
  LOCK=(flock "${VIRTEX_BENCH_LOCK:-/tmp/virtex-bench.lock}")
fi
# The project's deno when installed (npm ci), else the carried copy unpacked to /tmp.
DENO=$ROOT/node_modules/.bin/deno
[ -x "$DENO" ] || DENO=/tmp/virtex-deno/deno
PROFILE=${GPU_CHECK_PROFILE:-$PROFILE}
export XDG_RUNTIME_DIR=/tmp/virtex-xdg DENO_WEBGPU_BACKEND=${DENO_WEBGPU_BACKEND:-vulkan}
export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

# runs one part: name, timeout, command…; records "name rc seconds" in parts.tsv
part() {
  local name=$1 limit=$2
  shift 2
  local left=$((DEADLINE - ($(date +%s) - T0) - 20))
  if [ "$left" -lt 15 ]; then
    say "$name: SKIPPED (global deadline ${DEADLINE}s)"
    printf '%s\t%s\t%s\n' "$name" skipped 0 >>"$OUT/parts.tsv"
    return 124
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "$name: start (timeout ${limit}s)"
  local t=$(date +%s)
  GPU_CHECK_PART_END=$((t + limit)) timeout -k 5 "$limit" "$@"
  local rc=$?
  say "$name: exit $rc after $(($(date +%s) - t))s$([ $rc = 124 ] && echo ' (TIMEOUT)')"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t))" >>"$OUT/parts.tsv"
  return $rc
}

unxz_to() { # file.xz → dest, with xz or Python's lzma
  if command -v xz >/dev/null; then
    xz -dc "$1" >"$2"
  else
    "$PY" -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"
  fi
}

# ---------------------------------------------------------------- setup
if [ "$LOCAL" != 1 ]; then
  say "setup: Vulkan loader / GL dispatch libraries when missing, deno, node_modules"
  for f in .gl/*.deb; do
    [ -e "$f" ] || continue
    pkg=$(basename "$f" | cut -d_ -f1)
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      continue
    fi
    dpkg -x "$f" / && echo "  unpacked $f"
  done
  ldconfig
  if [ ! -x "$DENO" ]; then
    mkdir -p /tmp/virtex-deno
    unxz_to .devcarry/deno.xz "$DENO.tmp" && chmod +x "$DENO.tmp" && mv "$DENO.tmp" "$DENO"
  fi
  if [ ! -d node_modules/zod ]; then
    mkdir -p /tmp/virtex-deno
    unxz_to .devcarry/node_modules.tar.xz /tmp/virtex-deno/nm.tar && tar -xf /tmp/virtex-deno/nm.tar
    mkdir -p node_modules/.bin && ln -sf "$DENO" node_modules/.bin/deno
  fi
fi
[ -x "$DENO" ] || {
  say "FATAL: no deno at $DENO"
  exit 1
}
say "deno: $("$DENO" --version | head -1); python: $PY ($("$PY" --version 2>&1))"

# ---------------------------------------------------------------- environment
if command -v nvidia-smi >/dev/null; then
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit,pstate \
      --format=csv
    nvidia-smi
  } >"$OUT/nvidia-smi.txt" 2>&1
  cat "$OUT/nvidia-smi.txt"
else
  say "no nvidia-smi"
fi
say "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
ls -l /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null
ldconfig -p | grep -iE 'libvulkan|libGLX_nvidia|libEGL_nvidia|libnvidia-glcore' | head

# ---------------------------------------------------------------- adapter
HW=1
adapter() { part adapter 30 "$DENO" run -A bench/gpu/main.ts --part adapter --profile "$PROFILE" \
  --out "$OUT" $([ "$LOCAL" = 1 ] || [ "${GPU_CHECK_ALLOW_SOFTWARE:-0}" = 1 ] ||
  echo --require-hardware); }
if ! adapter && [ "$LOCAL" != 1 ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    [ -f "$icd" ] && break
    icd=""
  done
  if [ -z "$icd" ]; then
    lib=$(ldconfig -p | grep -o '/[^ ]*libGLX_nvidia.so.0' | head -1)
    if [ -n "$lib" ]; then
      icd=/tmp/virtex-deno/nvidia_icd.json
      printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' \
        "$lib" >"$icd"
      say "wrote $icd for $lib"
    fi
  fi
  egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$egl" ] || egl=/usr/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -n "$icd" ]; then
    say "retrying with VK_DRIVER_FILES=$icd"
    export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
    [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
    adapter || HW=0
  else
    say "no NVIDIA Vulkan ICD file and no libGLX_nvidia.so.0 found"
    HW=0
  fi
  if [ "$HW" = 0 ]; then
    say "retrying with DENO_WEBGPU_BACKEND=gl (EGL)"
    [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
    if DENO_WEBGPU_BACKEND=gl adapter; then
      HW=1
      export DENO_WEBGPU_BACKEND=gl
    fi
  fi
fi
grep -q '"available": true' "$OUT/adapter.json" 2>/dev/null || HW=0
if [ "$HW" = 0 ]; then
  say "NO HARDWARE WEBGPU ADAPTER: running the tests on whatever adapter exists and the PyTorch" \
    "side only; our benchmarks at full size would not finish on a software adapter"
fi

# ---------------------------------------------------------------- correctness
# The webgpu test files; each takes the default adapter (navigator.gpu.requestAdapter()).
part tests "${TT[0]}" bash -c '"$0" test -A --no-check --parallel "${@:2}" >"$1" 2>&1' \
  "$DENO" "$OUT/tests.log" tests/engine/backends/webgpu_test.ts \
  tests/engine/backends/webgpu_kernels_test.ts \
  tests/engine/cross_backend_test.ts tests/engine/amp_test.ts tests/engine/device_test.ts \
  tests/pipeline/pretrain/amp_trainer_test.ts
grep -E '^(ok|FAILED) \||\.\.\. FAILED|skipped|webgpu adapter' "$OUT/tests.log" | head -30

# ---------------------------------------------------------------- throughput
if [ "$HW" = 1 ]; then
  part ours_micro "${TT[1]}" ${LOCK[@]+"${LOCK[@]}"} "$DENO" run -A bench/gpu/main.ts --part micro \
    --profile "$PROFILE" --out "$OUT" --reserve 20
fi
part torch_micro "${TT[2]}" ${LOCK[@]+"${LOCK[@]}"} "$PY" bench/gpu/torch_cuda.py --part micro \
  --profile "$PROFILE" --out "$OUT" --reserve 20
if [ "$HW" = 1 ]; then
  # per-kernel profile of one step, legacy ("before") and current kernels, same process
  part ours_profile "${TT[3]}" ${LOCK[@]+"${LOCK[@]}"} "$DENO" run -A bench/gpu/main.ts --part profile \
    --profile "$PROFILE" --out "$OUT" --reserve 30
fi
if [ "$HW" = 1 ]; then
  part ours_pretrain "${TT[4]}" ${LOCK[@]+"${LOCK[@]}"} "$DENO" run -A bench/gpu/main.ts --part pretrain \
    --profile "$PROFILE" --out "$OUT" --reserve 40
fi
part torch_pretrain "${TT[5]}" ${LOCK[@]+"${LOCK[@]}"} "$PY" bench/gpu/torch_cuda.py --part pretrain \
  --profile "$PROFILE" --out "$OUT" --reserve 30 --ours "$OUT/ours_pretrain.json"

# ---------------------------------------------------------------- report
DEADLINE=$((DEADLINE + 30)) part report 30 "$DENO" run -A bench/gpu/report.ts "$OUT"
say "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
# exit status: 0 when the tests passed and the report exists
rc=0
grep -q $'^tests\t0\t' "$OUT/parts.tsv" || rc=1
[ -f "$OUT/report.md" ] || rc=1
say "exit $rc"
exec 1>&- 2>&-
wait "$TEE_PID" 2>/dev/null
exit $rc
