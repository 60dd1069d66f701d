"""Batch jobs on this machine or on a cluster engine (Dask or Ray), resumable, with a per-row report.

* :func:`run_batch` runs a task over rows on an engine and returns a :class:`BatchReport`
  (row, status ok/skipped/failed, error, seconds, worker, frames), written as CSV or JSON.
* :func:`open_engine` / :data:`ENGINES`: ``local`` (this process or a process pool), ``dask``
  (extra ``[dask]``), ``ray`` (extra ``[ray]``); ``address`` points at an existing cluster.
* :func:`check_output`: is an existing output complete (the resume check)?
* :func:`worker_cache`: what a worker keeps between rows (models are loaded once per worker).
* :func:`run_render_batch`: ``flame-transit render --batch`` / ``export --batch``.

How to run it on a real cluster: ``docs/SCALE.md``.
"""

from .engines import ENGINES, Engine, check_engine, open_engine
from .render import WorkerModels, render_job, run_render_batch, worker_models
from .runner import REPORT_FIELDS, BatchReport, check_report_path, read_report_frames, run_batch, run_row
from .validate import check_output
from .worker import limit_threads, load_counts, worker_cache, worker_id

__all__ = [
    "ENGINES",
    "Engine",
    "check_engine",
    "open_engine",
    "WorkerModels",
    "render_job",
    "run_render_batch",
    "worker_models",
    "REPORT_FIELDS",
    "BatchReport",
    "check_report_path",
    "read_report_frames",
    "run_batch",
    "run_row",
    "check_output",
    "limit_threads",
    "load_counts",
    "worker_cache",
    "worker_id",
]
