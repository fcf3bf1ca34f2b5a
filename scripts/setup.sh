#!/usr/bin/env bash
# Set up gx on a fresh machine: a virtual environment in .venv with PyTorch (CPU build),
# Jittor and the test tools, plus Debian's oneDNN for fast Jittor CPU convolutions.
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

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# The CPU build of torch first: any other torch request would pull several GB of CUDA packages.
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[jittor,dev]"
