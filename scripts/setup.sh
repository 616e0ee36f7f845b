#!/usr/bin/env bash
# Create .venv and install latentpress with its test extras and the jxl codec, pinned by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,jxl]"
# Headless Chromium for the report's browser test (Debian package; CI runs as root).
command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
