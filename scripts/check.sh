#!/usr/bin/env bash
# Style and type checks (run by CI before the tests): ruff's lint rules and formatting, then
# mypy over gx/, with the settings in pyproject.toml. Needs `bash scripts/setup.sh` first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check gx tests benchmarks scripts
.venv/bin/ruff format --check gx tests benchmarks scripts
.venv/bin/mypy
