#!/usr/bin/env bash
# Style, type and documentation checks (run by CI before the tests): ruff's lint rules and
# formatting, mypy over gx/, with the settings in pyproject.toml, then the documentation site
# built strictly (mkdocs.yml): a broken link or a documented object without a docstring fails.
# Needs `bash scripts/setup.sh` first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check gx tests benchmarks scripts
.venv/bin/ruff format --check gx tests benchmarks scripts
.venv/bin/mypy
# The site's tools need Python 3.11+ (setup.sh installs them there): on an older Python this
# says so instead of failing on a missing command.
if .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  # (no --quiet: it silences the warnings that --strict counts, and the build would pass)
  NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict
else
  echo "note: the documentation site needs Python 3.11 or later; not built" >&2
fi
