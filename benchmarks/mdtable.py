"""Markdown tables for the benchmarks' result files."""

from __future__ import annotations


def table(rows: list[dict]) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (columns from the first row)."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
