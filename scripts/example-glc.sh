#!/usr/bin/env bash
# A second example: glc searched photo by photo under a floor. Trains a glc:fast
# collection model on the photos themselves (300 steps: a quick model, then 300 steps
# tuning the VAE decoder; about 13 minutes on two cores), archives them with glc and
# AVIF each searched per photo for LPIPS at most 0.2, then prints for every photo the
# glc quality the search found, its size and LPIPS, and what the selection kept (bytes
# include each photo's share of the collection model). About 15 minutes with the setup.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export LATENTPRESS_MODELS="${LATENTPRESS_MODELS:-$(cd .. && pwd)/shared/models}"
SOURCE="${1:-../shared/data/kodak-dev}"
OUT="${2:-example-out/glc}"
.venv/bin/latentpress archive "$SOURCE" "$OUT/archive" --codec glc:fast@lpips0.2 --codec avif@lpips0.2 \
  --train-steps 300 --target-quality "lpips<=0.2"
.venv/bin/python - "$OUT/archive" <<'PY'
import json, sys
from latentpress.infra.ledger import latest_rows, read_ledger
from latentpress.pipeline.selection import read_selection
archive = sys.argv[1]
rows = latest_rows(read_ledger(f"{archive}/ledger"))
glc = rows[rows["config_key"] == "glc.fast.lpips0.2"].set_index("image_id")
_, chosen = read_selection(f"{archive}/selection.parquet")
print(f"{'photo':<14}{'glc quality':>12}{'glc bpp':>9}{'LPIPS':>7}   kept (bpp with model share)")
for row in chosen.itertuples():
    g = glc.loc[row.image_id]
    name = g["source"].rsplit("/", 1)[-1]
    print(f"{name:<14}{json.loads(g['params'])['quality']:>12.2f}{g['bpp']:>9.3f}{g['lpips']:>7.3f}   "
          f"{row.config_key} ({row.bpp:.3f})")
PY
