"""Orchestration: each command's work cut into batches and run by an executor.

- :mod:`.ingest`, :mod:`.compress`, :mod:`.evaluate`, :mod:`.restore` and
  :mod:`.archive` (all three steps in one run): plain functions that plan batches,
  hand pipeline functions to an executor and gather every image's outcome into a
  :class:`~latentpress.flows.results.RunResult`;
- :mod:`.executors`: in this process (no server, no cluster) or as Prefect tasks on
  Dask workers;
- :mod:`.prefect_flows`: the same functions as Prefect flows on Dask, for bulk and
  scheduled runs (the deployments of ``prefect.yaml``);
- :mod:`.common` (jobs and batches), :mod:`.progress` (what an operator sees) and
  :mod:`.run_log` (what a Prefect run logs, and its Failed state when images were lost).

Each takes the run object (``latentpress.run``) whole. A library user runs the whole
archive path in-process with
``latentpress.flows.archive.archive(Run(archive, source=source, codecs=["avif@30"]))``.
"""
