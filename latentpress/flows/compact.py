"""Compact a ledger under a lease, so that no other compaction (and, for an archive's
own ledger, no other writing run) works on it meanwhile."""

from __future__ import annotations

from latentpress.infra import storage
from latentpress.infra.compaction import Compaction, compact
from latentpress.infra.layout import ledger_archive
from latentpress.infra.lease import archive_lease, leased

STANDALONE_LEASE = "_lease"
"""Folder inside a ledger that is no archive's where its compaction lease lives
(readers skip names starting with ``_``)."""


def compact_ledger(ledger_url: str) -> Compaction:
    """Compact the ledger at ``ledger_url`` (``infra.compaction``); an archive's own
    ledger under the archive's lease, whose end records the archive's new fixity."""
    archive = ledger_archive(ledger_url)
    if archive is not None:
        return _archive_ledger(archive, ledger_url)
    with archive_lease(storage.join(ledger_url, STANDALONE_LEASE), "compact"):
        return compact(ledger_url)


@leased("compact")
def _archive_ledger(archive: str, ledger_url: str) -> Compaction:
    return compact(ledger_url)
