"""Reports for people: rate/quality curves, BD-rates, speeds and crops from a ledger.

``write_report(ledger_url, out)`` writes ``out/index.html`` (self-contained) and the
PNG plots it embeds.
"""

from latentpress.report.build import write_report

__all__ = ["write_report"]
