#!/usr/bin/env bash
# The exact layout on an ARM CPU (NEON, as on Apple Silicon), emulated: cross-builds
# llama.cpp (from llama-cpp-python 0.3.36's sdist) and pyllmattr's engine for aarch64 and
# runs bench/arm/exact_check.cpp under qemu-user on the default model.
#
# Needs Debian's g++-aarch64-linux-gnu and qemu-user (apt-get install), CMake and Ninja.
# Usage: bench/arm/check_arm.sh [SDIST.tar.gz|.tar.xz] [MODEL.gguf] [N_THREADS]
#   (default SDIST: bench/gpu/_carry/1's trimmed one; default MODEL: pla.default_model_path())
# Prints exact_check's JSON; exits non-zero when a check fails.
#
# What this does not cover: Apple's compiler and its Accelerate BLAS back end (llama.cpp
# on macOS uses it for some large products), and the Metal GPU back end.
set -euo pipefail
cd "$(dirname "$0")/../.."
sdist="${1:-bench/gpu/_carry/1/llama_cpp_python-0.3.36-trimmed.tar.xz}"
model="${2:-$(cd / && python3 -c 'import pyllmattr; print(pyllmattr.default_model_path())')}"
threads="${3:-2}"
work=bench/arm/_build
# Apple M1's features (ARMv8.5 with dot products and fp16 arithmetic; no int8 matmul).
ARM_ARCH="${ARM_ARCH:-armv8.2-a+fp16+dotprod}"

for tool in aarch64-linux-gnu-g++ qemu-aarch64 cmake ninja; do
  command -v "$tool" >/dev/null || { echo "check_arm: $tool is missing" >&2; exit 2; }
done
mkdir -p "$work"
if [ ! -d "$work/src" ]; then
  tar -xf "$sdist" -C "$work"
  mv "$work"/llama_cpp_python-*/vendor/llama.cpp "$work/src"
  rm -rf "$work"/llama_cpp_python-*
fi

started=$(date +%s)
cmake -S "$work/src" -B "$work/llama" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH="$ARM_ARCH" -DGGML_OPENMP=OFF \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_OPENSSL=OFF >"$work/cmake.log"
ninja -C "$work/llama" llama >"$work/ninja.log"
lib="$work/llama"
aarch64-linux-gnu-g++ -O2 -std=c++17 -static -Icsrc -I"$work/src/include" -I"$work/src/ggml/include" \
  bench/arm/exact_check.cpp $(ls csrc/*.cpp | grep -v bindings.cpp) \
  "$lib/src/libllama.a" "$lib/ggml/src/libggml.a" "$lib/ggml/src/libggml-cpu.a" \
  "$lib/ggml/src/libggml-base.a" -lpthread -o "$work/exact_check"
echo "check_arm: built in $(($(date +%s) - started)) s for $ARM_ARCH" >&2

started=$(date +%s)
status=0
qemu-aarch64 "$work/exact_check" "$model" "$threads" || status=$?
echo "check_arm: ran in $(($(date +%s) - started)) s under qemu-aarch64 (exit $status)" >&2
exit "$status"
