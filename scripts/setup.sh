#!/usr/bin/env bash
# Set up gx on a fresh machine: a virtual environment in .venv with PyTorch (CPU build),
# Jittor, the test tools and the documentation site's tools (the dev extra), plus Debian's
# oneDNN for fast Jittor CPU convolutions.
# Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# oneDNN makes Jittor's CPU convolutions ~70x faster; gx finds it by itself. Without root or
# apt, gx still works (slowly on Jittor CPU), so this step only warns.
if ! ldconfig -p 2>/dev/null | grep -q libdnnl; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libdnnl-dev >/dev/null) \
      || echo "warning: could not install libdnnl-dev; Jittor CPU convolutions will be slow" >&2
  else
    echo "note: install Debian's libdnnl-dev (as root) for fast Jittor CPU convolutions" >&2
  fi
fi

# Graphviz's dot renders gx graph pictures; without it gx graph writes the .dot file instead.
if ! command -v dot >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
      || echo "warning: could not install graphviz; gx graph will write .dot files only" >&2
  else
    echo "note: install Debian's graphviz (as root) so gx graph can draw SVG and PNG" >&2
  fi
fi

# OpenMPI: Jittor's multi-process training (gx run --backend jittor --nproc N) runs under its
# mpirun, and Jittor builds its MPI ops with mpicc. The tests train with it, so a failure stops.
if ! command -v mpirun >/dev/null || ! command -v mpicc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null
  else
    echo "note: install Debian's openmpi-bin and libopenmpi-dev (as root) for gx run --backend jittor --nproc N" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# The CPU build of torch first: any other torch request would pull several GB of CUDA packages.
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[jittor,tensorboard,onnx,dev]"

# Jittor compiles its own core with g++ the first time it is imported (minutes; cached under
# ~/.cache/jittor). Doing it here keeps that wait out of the first run and the first test.
echo "preparing Jittor (compiles its core on first use)..." >&2
.venv/bin/python -c "from gx.backends import get_backend; get_backend('jittor', 'cpu')"
