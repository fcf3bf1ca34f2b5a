#!/usr/bin/env bash
# The GPU check as one prepared command, for a machine with an NVIDIA GPU and PyTorch but no
# network and no Jittor: it installs what is missing from the wheels in .gpu-check/wheels, then
# runs scripts/gpu_check.py (gx parity, gx bench and the README's main command on the GPU, then
# parity and bench rows in bf16 and fp16) and writes reports/gpu-check/gpu-check.md and .json.
#
#   bash scripts/gpu-check.sh --pack [PYTHON_VERSION]   # here, with network: fill .gpu-check/
#   bash scripts/gpu-check.sh                           # there (default --device cuda)
#   bash scripts/gpu-check.sh --device cpu --steps 2 --bench-steps 2 --main-steps 2   # anywhere
#
# .gpu-check/ (git-ignored) holds the wheels of gx, Jittor and what they need that such a
# machine lacks (numpy 1.x, astunparse), built for PYTHON_VERSION (default 3.12), and the MNIST
# test split. Extra arguments go to scripts/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
KIT=.gpu-check

if [ "${1:-}" = "--pack" ]; then
  version=${2:-3.12}
  rm -rf "$KIT/wheels" && mkdir -p "$KIT/wheels" "$KIT/mnist"
  "$PYTHON" -m pip wheel -q --no-deps -w "$KIT/wheels" . jittor==1.3.11.0 astunparse
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
    --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$KIT/wheels" "numpy==1.26.4"
  root=${GX_TEST_MNIST:-../shared/data/mnist}
  cp "$root"/t10k-*-idx?-ubyte.gz "$KIT/mnist/"
  du -sh "$KIT"
  exit 0
fi

# Install into a folder of its own what this Python lacks, from the carried wheels only. (Found,
# not imported: a bare Jittor import on a machine with nvcc is one of the traps gx handles.)
if ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('gx') and u.find_spec('jittor')))"; then
  if ! ls "$KIT"/wheels/*.whl >/dev/null 2>&1; then
    echo "error: gx or Jittor is not installed and $KIT/wheels holds no wheels; run" \
         "'bash scripts/gpu-check.sh --pack' on a machine with network access first" >&2
    exit 2
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gx-site "$KIT"/wheels/*.whl
  export PYTHONPATH=/tmp/gx-site${PYTHONPATH:+:$PYTHONPATH}
fi
exec "$PYTHON" scripts/gpu_check.py "$@"
