#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, in LATENTPRESS_TEST_WORKERS processes
# (default 2, one per core of the machines we test on; 1 runs them in this process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export LATENTPRESS_MODELS="${LATENTPRESS_MODELS:-$(cd .. && pwd)/shared/models}"
workers="${LATENTPRESS_TEST_WORKERS:-2}"
parallel=()
if [ "$workers" -gt 1 ]; then
  parallel=(-n "$workers" --dist loadfile)  # a module's tests, and its fixtures, in one process
fi
exec .venv/bin/python -m pytest -q "${parallel[@]}" "$@"
