#!/usr/bin/env bash
# Set up (if needed), archive the Kodak development photos with AVIF and latent-q,
# print the ledger summary and restore the photos (latent-q at quality 1) as PNG files
# under their own names.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export LATENTPRESS_MODELS="${LATENTPRESS_MODELS:-$(cd .. && pwd)/shared/models}"
SOURCE="${1:-../shared/data/kodak-dev}"
OUT="${2:-example-out}"
.venv/bin/latentpress archive "$SOURCE" "$OUT/archive" --codec avif@20,40 --codec latent-q@0.5,1
.venv/bin/latentpress restore "$OUT/archive" "$OUT/restored" --config latent-q.default.q1
