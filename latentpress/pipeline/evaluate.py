"""Evaluation: decode the stored bytes, measure them against the original, append
ledger rows.

The rate is the stored object's size: every counted byte was written, read back and
decoded here. ``bpp`` is the image's own container (the payload rate); rows of images
coded against a shared model name it, and the rate with the model's bytes shared by
the images that use it is computed when the ledger is read
(``latentpress.infra.ledger.with_rates``). Only ``ok`` rows are written by evaluation; an image that cannot be
evaluated is an ``error`` for the next run to retry, never a row.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from latentpress.codecs import CodecConfig
from latentpress.infra import storage
from latentpress.infra.collection import Item
from latentpress.infra.container import Container
from latentpress.infra.layout import ArchiveLayout
from latentpress.infra.ledger import STATUSES, append_rows, read_ledger
from latentpress.pipeline.context import RunContext
from latentpress.pipeline.decode import StoredAt, decode_container, shared_model, shared_model_url
from latentpress.pipeline.originals import Decoded, Originals
from latentpress.pipeline.outcomes import Outcome, failure, unless_transient
from latentpress.pipeline.rows import base_row


@dataclass(frozen=True)
class Recorded:
    """Which images the ledger holds a finished row for, per configuration key."""

    done: dict[str, set[str]] = field(default_factory=dict)
    """Ids with an ``ok`` or ``rejected`` row."""
    rejected: dict[str, set[str]] = field(default_factory=dict)
    """Ids whose latest row is ``rejected``: refused by the codec, not tried again."""

    def done_for(self, key: str) -> set[str]:
        return self.done.get(key, set())

    def rejected_for(self, key: str) -> frozenset[str]:
        return frozenset(self.rejected.get(key, ()))


def recorded(ledger_url: str) -> Recorded:
    """What the ledger at ``ledger_url`` holds as done."""
    ledger = read_ledger(ledger_url, columns=["image_id", "config_key", "status", "timestamp"])
    finished = ledger[ledger["status"].isin(STATUSES)]
    latest = finished.sort_values("timestamp").drop_duplicates(["image_id", "config_key"], keep="last")
    refused = latest[latest["status"] == "rejected"]
    return Recorded(
        done={key: set(ids) for key, ids in finished.groupby("config_key")["image_id"]},
        rejected={key: set(ids) for key, ids in refused.groupby("config_key")["image_id"]},
    )


def unevaluated(
    archive: str, items: list[Item], configs: list[CodecConfig], done: Recorded
) -> dict[CodecConfig, list[Item]]:
    """For each of ``configs``, the ``items`` with a stored container and no finished row."""
    todo = {}
    for config in configs:
        stored, finished = ArchiveLayout(archive).stored_images(config.key), done.done_for(config.key)
        todo[config] = [i for i in items if i.image_id in stored and i.image_id not in finished]
    return todo


@dataclass(frozen=True)
class Evaluation:
    """What evaluating a batch gave: an outcome per image, and how many ledger rows it
    appended (the rows themselves stay in the ledger: a flow of a million images
    holds counts, not rows)."""

    outcomes: list[Outcome]
    rows: int


def warm_up_in_background() -> None:
    """Start loading the metric networks in a thread of this process, so that they are
    ready when the first evaluation comes; a failure is left for that evaluation to
    report. The process waits for the thread before it exits (torch must not be
    stopped half-way through building a network)."""
    from latentpress.models.metrics import warm_up

    def load() -> None:
        try:
            warm_up()
        except Exception:  # noqa: BLE001 - the evaluation reports it with its images
            logging.getLogger(__name__).debug("metric warm-up failed", exc_info=True)

    threading.Thread(target=load, name="latentpress-metrics-warm-up", daemon=False).start()


def shared_columns(container: Container, archive: str) -> dict:
    """Ledger columns of the shared model an image container uses (nulls if none)."""
    url = shared_model_url(container, json.loads(container.sections["config"]), archive)
    if url is None:
        return {"shared_model_id": None, "shared_model_bytes": None, "shared_images": None}
    _, size, images = shared_model(url)
    return {
        "shared_model_id": container.sections["shared"].decode("ascii"),
        "shared_model_bytes": size,
        "shared_images": images,
    }


MEASURE_PIXELS = 24_000_000
"""Most decoded pixels held at once for measuring one photo: its configurations are
decoded and measured together in groups of at most this many pixels (a 24 MP photo
one by one)."""


def evaluate_batch(items: list[Item], run: RunContext, config: CodecConfig) -> Evaluation:
    """:func:`evaluate_images` of ``items`` under one configuration."""
    return evaluate_images([(item, [config]) for item in items], run)


def evaluate_images(
    work: list[tuple[Item, list[CodecConfig]]], run: RunContext, originals: Originals | None = None
) -> Evaluation:
    """Measure each item's stored containers in ``run``'s archive under its
    configurations; the rows are appended to ``run``'s ledger as one new file.

    Photo by photo: the original is read once and measured against all its
    configurations together (``models.metrics.Reference``: its side of LPIPS and DISTS
    computed once), taken from ``originals`` when a quality search of this task
    prepared it; a stored stream that search chose and decoded is not decoded again
    (its container is read back and checked, its payload compared byte for byte).
    ``run.metrics``: those to measure (None: all four); the others are left empty and
    the rows' ``metrics`` column names the ones measured. Rows of images coded
    against a shared model carry its id and size.
    """
    originals = originals or Originals()
    outcomes: list[Outcome] = []
    rows: list[dict] = []
    for item, configs in work:
        per_group = max(1, MEASURE_PIXELS // max(1, item.width * item.height))
        for start in range(0, len(configs), per_group):
            group_outcomes, group_rows = _evaluate_group(item, configs[start : start + per_group], run, originals)
            outcomes += group_outcomes
            rows += group_rows
        originals.done(item)
    if rows:
        append_rows(run.ledger, rows, run.run_id)
    return Evaluation(outcomes, len(rows))


def _evaluate_group(
    item: Item, configs: list[CodecConfig], run: RunContext, originals: Originals
) -> tuple[list[Outcome], list[dict]]:
    """Decode ``item`` under each of ``configs`` and measure them together: an outcome
    per configuration, and a ledger row per measured one."""
    from latentpress.models.metrics import METRIC_NAMES

    outcomes: list[Outcome] = []
    decoded = []
    for config in configs:
        try:
            decoded.append((config, *_decoded(item, config, run, originals.decoded(item, config.key))))
        except Exception as exc:  # noqa: BLE001 - the image is retried by the next run
            unless_transient(exc)
            outcomes.append(failure(item.image_id, config.key, exc, bad_input=False))
    if not decoded:
        return outcomes, []
    metrics = run.metrics
    try:
        measured = originals.get(item).measure([pixels for _, pixels, _ in decoded], tuple(metrics or METRIC_NAMES))
    except Exception as exc:  # noqa: BLE001 - the image is retried by the next run
        unless_transient(exc)
        return outcomes + [failure(item.image_id, config.key, exc, bad_input=False) for config, _, _ in decoded], []
    rows = []
    for (config, _, fields), values in zip(decoded, measured, strict=True):
        row = base_row(item, config, run.run_id)
        rows.append({**row, **fields, **{name: values.get(name) for name in METRIC_NAMES},
                     "metrics": None if metrics is None else ",".join(metrics),
                     "device": fields.get("device") or row["device"]})  # fmt: skip
        outcomes.append(Outcome(item.image_id, config.key, "ok"))
    return outcomes, rows


def _decoded(item: Item, config: CodecConfig, run: RunContext, known: Decoded | None) -> tuple[np.ndarray, dict]:
    """``item``'s pixels decoded from its stored container under ``config`` (``known``:
    the stream a search of this task decoded, used if the stored payload is that
    stream), and the row's fields that come from the container and its statistics."""
    url = run.layout.image(config.key, item.image_id)
    data = storage.read_bytes(url)
    stats = json.loads(storage.read_bytes(run.layout.stats(config.key, item.image_id)))
    start = time.perf_counter()
    stored = StoredAt(url, item.image_id, config.key, (item.width, item.height))
    decoded, container = decode_container(data, run.vae, run.archive, stored, known and (known.payload, known.pixels))
    decode_seconds = time.perf_counter() - start
    if known is not None and decoded is known.pixels:
        decode_seconds += known.seconds
    fields = {
        "params": json.dumps(stats["params"], sort_keys=True),
        "vae_id": container.vae_id or None,
        "bytes": len(data),
        **shared_columns(container, run.archive),
        "bpp": 8 * len(data) / (item.width * item.height),
        "encode_seconds": stats["encode_seconds"],
        "decode_seconds": decode_seconds,
        "device": stats.get("device"),
    }
    return decoded, fields
