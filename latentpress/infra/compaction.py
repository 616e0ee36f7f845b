"""Compacting a ledger: its many small Parquet parts (one per batch and run) merged
into few large ones, never losing or duplicating a row, even if killed at any point.

In each ``codec=`` partition, the parts below ``SMALL_BYTES`` are merged, in name
order, into new parts of at most ``ROWS_PER_PART`` rows,
``part-compact-<uuid>.parquet``, each naming in its Parquet metadata the parts it
replaces. A new part is written whole (an atomic write), read back from storage and
compared with the parts it replaces row for row, and only then are those deleted.
Every reader of :func:`latentpress.infra.ledger.read_ledger` skips a part that a
present compacted part replaces, so at every moment it sees each row exactly once; a
compaction killed after writing a new part leaves replaced parts that the readers
skip and that the next compaction deletes first. A reader of the folder outside
latentpress (DuckDB, pandas on the folder) can see rows twice only in the moments
between a new part's arrival and its replaced parts' deletion.
"""

from __future__ import annotations

import io
import json
import posixpath
import uuid
from dataclasses import dataclass, field

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from latentpress.infra import storage
from latentpress.infra.ledger import COMPACT_PREFIX, FILE_SCHEMA, REPLACES_KEY, all_parts, compacted_parts, replaced_by

SMALL_BYTES = 32 << 20
"""Parts at least this large are left as they are."""
ROWS_PER_PART = 2_000_000
"""Most rows in one compacted part (about 60-120 MB of Parquet in the ledger's schema)."""


class CompactionError(RuntimeError):
    """A compacted part does not hold exactly the rows of the parts it replaces."""


@dataclass
class Compaction:
    """What a compaction did."""

    merged: int = 0
    """Parts merged into new ones (and deleted)."""
    written: list[str] = field(default_factory=list)
    """The new parts."""
    rows: int = 0
    """Rows moved (each now in exactly one new part)."""
    finished: int = 0
    """Replaced parts of an interrupted compaction deleted first."""


def compact(ledger_url: str, small_bytes: int = SMALL_BYTES, rows_per_part: int = ROWS_PER_PART) -> Compaction:
    """Merge each partition's parts below ``small_bytes`` into parts of at most
    ``rows_per_part`` rows (see the module's description). The caller holds the lease
    that keeps other compactions out."""
    fs, root = storage.filesystem(ledger_url)
    result = Compaction()
    paths = all_parts(fs, root)
    compacted = compacted_parts(fs, paths)
    stale = [p for p in paths if replaced_by(compacted, p)]
    for path in stale:  # an interrupted compaction: its new part holds these rows
        _delete(fs, path)
    result.finished = len(stale)
    sizes = {p: fs.info(p)["size"] for p in paths if p not in stale}
    for folder in sorted({posixpath.dirname(p) for p in sizes}):
        small = [p for p in sizes if posixpath.dirname(p) == folder and sizes[p] < small_bytes]
        for group, rows in _groups(fs, small, rows_per_part):
            if len(group) > 1:
                _merge(fs, folder, group, rows, result)
    return result


def _groups(fs, paths: list[str], rows_per_part: int) -> list[tuple[list[str], int]]:
    """``paths`` in consecutive groups of at most ``rows_per_part`` rows (a larger part
    alone), each with its number of rows (from the parts' footers)."""
    groups: list[tuple[list[str], int]] = []
    for path in paths:
        count = pq.read_metadata(path, filesystem=fs).num_rows
        if not groups or groups[-1][1] + count > rows_per_part:
            groups.append(([], 0))
        group, rows = groups[-1]
        group.append(path)
        groups[-1] = (group, rows + count)
    return groups


def _merge(fs, folder: str, group: list[str], expected: int, result: Compaction) -> None:
    """Write one part holding ``group``'s ``expected`` rows, check it, then delete ``group``."""
    merged = ds.dataset(group, schema=FILE_SCHEMA, format="parquet", filesystem=fs).to_table()
    if merged.num_rows != expected:
        raise CompactionError(f"{folder}: read {merged.num_rows} rows of {expected} from {len(group)} parts")
    names = [posixpath.basename(p) for p in group]
    out = io.BytesIO()
    pq.write_table(merged.replace_schema_metadata({REPLACES_KEY: json.dumps(names).encode()}), out)
    path = posixpath.join(folder, f"{COMPACT_PREFIX}{uuid.uuid4().hex}.parquet")
    storage.write_bytes_atomic(fs.unstrip_protocol(path), out.getvalue())
    stored = pq.read_table(path, filesystem=fs).replace_schema_metadata(None)
    if not stored.equals(merged.replace_schema_metadata(None)):
        fs.rm_file(path)
        raise CompactionError(f"{path}: read back, it differs from the {len(group)} parts it replaces; nothing deleted")
    for path in group:
        _delete(fs, path)
    result.merged += len(group)
    result.rows += merged.num_rows
    result.written.append(path)


def _delete(fs, path: str) -> None:
    """Delete a replaced part."""
    fs.rm_file(path)
