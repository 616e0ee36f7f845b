"""Select: the configuration of every image for a quality floor, stored in the archive."""

from __future__ import annotations

import pandas as pd

from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.lease import leased
from latentpress.infra.ledger import read_ledger
from latentpress.pipeline.selection import select, write_selection
from latentpress.quality_floors import QualityTarget


@leased("select")
def select_configs(
    archive: str, target: QualityTarget, ledger: str | None = None, configs: list[str] | None = None
) -> pd.DataFrame:
    """Choose, for every image of the ledger (default ``<archive>/ledger``), the smallest
    of ``configs`` (default: all) that meets ``target``; store and return the choice."""
    layout = ArchiveLayout(archive)
    selection = select(read_ledger(ledger or layout.ledger), target, configs)
    write_selection(layout.selection, selection, target)
    return selection
