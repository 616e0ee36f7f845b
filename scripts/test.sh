#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export LATENTPRESS_MODELS="${LATENTPRESS_MODELS:-$(cd .. && pwd)/shared/models}"
exec .venv/bin/python -m pytest -q "$@"
