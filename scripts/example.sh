#!/usr/bin/env bash
# Set up (if needed) and archive the Kodak development photos with AVIF, JPEG XL,
# latent-q and the VAE alone (a reference), keeping for each photo the smallest
# configuration with LPIPS at most 0.2 (the run's points, and AVIF, JPEG XL and
# latent-q each searched photo by photo for the cheapest setting that meets it); print the ledger summary, restore the photos
# (each from its chosen configuration) as PNG files under their own names, check the
# archive's fixity and write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export LATENTPRESS_MODELS="${LATENTPRESS_MODELS:-$(cd .. && pwd)/shared/models}"
SOURCE="${1:-../shared/data/kodak-dev}"
OUT="${2:-example-out}"
.venv/bin/latentpress archive "$SOURCE" "$OUT/archive" --codec avif@20,40 --codec jxl@20,45 \
  --codec latent-q@0.5,1 --codec vae --target-quality "lpips<=0.2"
.venv/bin/latentpress restore "$OUT/archive" "$OUT/restored"
.venv/bin/latentpress verify "$OUT/archive"
.venv/bin/latentpress report "$OUT/archive/ledger" "$OUT/report"
