#!/usr/bin/env bash
# Checks that bench/gpu/trim_sdist.sh removed nothing a build needs: configures the
# trimmed sdist with CMake (as llama-cpp-python's build does, with Ninja) and, given the
# full sdist too, configures that the same way and compares the sets of source files the
# two build.ninja files compile. Configuring only: no compiler runs beyond CMake's probes.
#
# With CHECK_INCLUDES=1 it also runs the preprocessor (the compiler's -M) on every source
# file of the trimmed tree, so that a header only a removed folder held would show.
#
# Usage: bench/gpu/check_trimmed.sh TRIMMED.tar.xz [FULL_SDIST.tar.gz] [-- CMAKE_ARGS...]
#   e.g. bench/gpu/check_trimmed.sh bench/gpu/_carry/llama_cpp_python-0.3.36-trimmed.tar.xz \
#          llama_cpp_python-0.3.36.tar.gz -- -DGGML_CUDA=OFF
set -euo pipefail
trimmed="$1"
shift
full=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  full="$1"
  shift
fi
[ "${1:-}" = "--" ] && shift
cmake_args=("$@")
[ ${#cmake_args[@]} -gt 0 ] || cmake_args=(-DGGML_CUDA=OFF)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Prints the sorted source files that build.ninja compiles, relative to the source tree.
configure() {
  local tarball="$1" name="$2"
  mkdir -p "$work/$name"
  tar -xf "$tarball" -C "$work/$name"
  local src
  src="$(echo "$work/$name"/llama_cpp_python-*)"
  cmake -S "$src" -B "$work/$name/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    -DSKBUILD_PLATLIB_DIR="$work/$name/platlib" "${cmake_args[@]}" >"$work/$name.log" 2>&1 || {
    echo "check_trimmed: CMake failed on the $name tree:" >&2
    tail -n 30 "$work/$name.log" >&2
    return 1
  }
  grep -oE '^build [^:]+\.o: [A-Z_]+_COMPILER__[^ ]+ [^ ]+' "$work/$name/build/build.ninja" |
    awk '{print $NF}' | sed "s|^$src/|SRC/|; s|^$work/$name/build/|BUILD/|" | sort -u >"$work/$name.sources"
  echo "check_trimmed: $name tree configured ($(wc -l <"$work/$name.sources") source files" \
    "compiled; warnings: $(grep -c 'CMake Warning' "$work/$name.log" || true))"
}

configure "$trimmed" trimmed
if [ "${CHECK_INCLUDES:-0}" = 1 ]; then
  # Each compile command with its output replaced by a dependency listing (-M): it fails
  # when an #include cannot be found.
  python3 "$(dirname "$0")/preprocess_all.py" "$work/trimmed/build/compile_commands.json"
fi
if [ -n "$full" ]; then
  configure "$full" full
  if diff "$work/full.sources" "$work/trimmed.sources" >"$work/diff"; then
    echo "check_trimmed: the trimmed tree compiles the same source files as the full sdist"
  else
    echo "check_trimmed: the source lists differ (full <, trimmed >):" >&2
    cat "$work/diff" >&2
    exit 1
  fi
  diff <(grep 'CMake Warning' -A2 "$work/full.log") <(grep 'CMake Warning' -A2 "$work/trimmed.log") ||
    echo "check_trimmed: (CMake's warnings above differ between the two trees)"
fi
