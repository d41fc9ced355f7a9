#!/usr/bin/env bash
# Trims llama-cpp-python's sdist to what a CUDA (or CPU) build of it needs, so that it can
# travel to a machine without network with the working tree (at most 64 MiB in all; the
# sdist is 73 MiB, 217 MiB unpacked).
#
# Usage: bench/gpu/trim_sdist.sh [SDIST.tar.gz] [OUT_DIR]
#   SDIST   the sdist of llama-cpp-python 0.3.36 (default: downloaded with pip)
#   OUT_DIR where the trimmed tarball goes (default bench/gpu/_carry, ignored by git)
# Writes OUT_DIR/llama_cpp_python-0.3.36-trimmed.tar.xz and, beside it and inside it,
# TRIMMED.txt: every removed path with its size, and why it is not needed.
#
# What is removed is never configured by CMake when llama-cpp-python builds with
# -DGGML_CUDA=on (llama.cpp as a subdirectory: no tests, tools, examples, server or app;
# ggml adds a back end's folder only when that back end is on). Kept: llama.cpp's src,
# include, common, vendor, cmake, licenses and ggml (the CPU and CUDA back ends, and the
# headers of all), tools/mtmd (llama-cpp-python builds it: LLAVA_BUILD), and
# llama-cpp-python's own CMakeLists.txt, pyproject.toml, README.md, LICENSE.md, PKG-INFO
# and llama_cpp/ package. bench/gpu/check_trimmed.sh configures the result with CMake.
set -euo pipefail
VERSION=0.3.36
here="$(cd "$(dirname "$0")" && pwd)"
sdist="${1:-}"
out="${2:-$here/_carry}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -z "$sdist" ]; then
  # Only llama-cpp-python from source: with --no-binary :all: pip would also build its
  # build requirements (CMake itself) from source to read the metadata.
  pip download -q --no-deps --no-binary llama-cpp-python -d "$work/dl" "llama-cpp-python==$VERSION"
  sdist="$(ls "$work"/dl/llama_cpp_python-"$VERSION".tar.gz)"
fi
tar -xzf "$sdist" -C "$work"
root="$work/llama_cpp_python-$VERSION"
[ -f "$root/vendor/llama.cpp/ggml/src/ggml-cuda/CMakeLists.txt" ] || {
  echo "trim_sdist: $sdist is not llama-cpp-python $VERSION's sdist" >&2
  exit 1
}

# path (relative to the sdist's root) | why it is not needed
REMOVE=(
  ".git|llama-cpp-python's repository history (build-info then says commit 'unknown')"
  ".github|CI configuration"
  "docker|Dockerfiles"
  "docs|documentation"
  "examples|Python examples"
  "tests|llama-cpp-python's tests"
  "scripts|release scripts"
  "vendor/llama.cpp/.git|a submodule pointer into the removed .git"
  "vendor/llama.cpp/.github|CI configuration"
  "vendor/llama.cpp/.devops|container recipes"
  "vendor/llama.cpp/models|vocabulary GGUFs for llama.cpp's tests"
  "vendor/llama.cpp/docs|documentation"
  "vendor/llama.cpp/media|images"
  "vendor/llama.cpp/tests|LLAMA_BUILD_TESTS is off for a subproject"
  "vendor/llama.cpp/benches|benchmark data"
  "vendor/llama.cpp/examples|LLAMA_BUILD_EXAMPLES is off for a subproject"
  "vendor/llama.cpp/pocs|LLAMA_BUILD_EXAMPLES is off for a subproject"
  "vendor/llama.cpp/app|LLAMA_BUILD_APP is off for a subproject"
  "vendor/llama.cpp/gguf-py|the Python gguf package"
  "vendor/llama.cpp/conversion|Python model converters"
  "vendor/llama.cpp/scripts|maintainer scripts"
  "vendor/llama.cpp/requirements|converters' Python requirements"
  "vendor/llama.cpp/skills|agent notes"
  "vendor/llama.cpp/grammars|sample GBNF grammars (data, not built)"
  "vendor/llama.cpp/ci|CI scripts"
)
# llama.cpp's tools: LLAMA_BUILD_TOOLS is off for a subproject; only mtmd is built (by
# llama-cpp-python's own CMakeLists.txt).
for tool in "$root"/vendor/llama.cpp/tools/*; do
  name="$(basename "$tool")"
  [ "$name" = mtmd ] || REMOVE+=("vendor/llama.cpp/tools/$name|LLAMA_BUILD_TOOLS is off for a subproject")
done
# ggml back ends other than the CPU's and CUDA's: ggml_add_backend() adds a folder only
# when its GGML_<NAME> option is on. (HIP and MUSA compile ggml-cuda's sources from
# their own folders, so they are gone too: this copy builds CPU and CUDA only.)
for backend in "$root"/vendor/llama.cpp/ggml/src/ggml-*/; do
  name="$(basename "$backend")"
  case "$name" in
    ggml-cpu | ggml-cuda) ;;
    *) REMOVE+=("vendor/llama.cpp/ggml/src/$name|ggml back end not configured with GGML_CUDA=on") ;;
  esac
done
# Top-level converter scripts of llama.cpp.
for f in "$root"/vendor/llama.cpp/convert_*.py; do
  REMOVE+=("vendor/llama.cpp/$(basename "$f")|Python model converter")
done

list="$work/TRIMMED.txt"
{
  echo "llama-cpp-python $VERSION sdist, trimmed by bench/gpu/trim_sdist.sh: removed paths"
  echo "(size in KiB before removal, then why the CUDA build does not need it)"
} >"$list"
for entry in "${REMOVE[@]}"; do
  path="${entry%%|*}"
  why="${entry#*|}"
  if [ -e "$root/$path" ]; then
    size=$(du -sk "$root/$path" | cut -f1)
    printf '%8s KiB  %s  -- %s\n' "$size" "$path" "$why" >>"$list"
    rm -rf "${root:?}/$path"
  fi
done
cp "$list" "$root/TRIMMED.txt"

tarball="$out/llama_cpp_python-$VERSION-trimmed.tar.xz"
# Sorted names and fixed owners and times: the same sdist gives the same bytes.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01' \
  -C "$work" -cf - "llama_cpp_python-$VERSION" | xz -9e -T1 >"$tarball"
cp "$list" "$out/TRIMMED.txt"
echo "trim_sdist: $(du -k "$tarball" | cut -f1) KiB -> $tarball ($(du -sk "$root" | cut -f1) KiB unpacked)"
