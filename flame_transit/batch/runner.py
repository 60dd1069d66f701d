"""Run batch rows on an engine: resume, per-row report, one code path for local and clusters.

A *job* is a dict with at least ``row`` (its line in the CSV), ``out`` (the output path) and
whatever its *task* needs (``image``, ``instruction`` ...). A task is a picklable callable
``task(job) -> dict`` that writes ``job["out"]`` (atomically) and returns at least ``frames``;
it raises :class:`~flame_transit.errors.FlameTransitError` or :class:`OSError` for a row that
cannot be done. :func:`run_row` wraps a task on the worker: with ``resume`` it first checks the
existing output (:func:`~flame_transit.batch.validate.check_output`) and skips a complete one,
then times the row, catches the row's own errors and names the worker. Anything else (a bug)
stops the batch, as in a loop on one machine.

:func:`run_batch` sends the rows through :func:`~flame_transit.batch.engines.open_engine` and
collects a :class:`BatchReport`, written as CSV or JSON (by suffix) even when interrupted.

Warnings raised while a row runs ("2 faces found; using the largest", ignored instruction
words) are recorded on the worker, listed in the row's report entry (``warnings``) and raised
again on the driver, once, with the row named: ``row 3 (clips/b.mp4): ignored 'buddy'``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib
import io
import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import FlameTransitError, InputError
from ..io_utils import atomic_write_text, user_path
from .engines import check_engine, open_engine
from .validate import check_output
from .worker import load_counts, worker_id

__all__ = ["REPORT_FIELDS", "BatchReport", "run_row", "run_batch", "read_report_frames", "check_report_path",
           "recording_row", "warn_again"]

log = logging.getLogger(__name__)

#: columns of the per-row report
REPORT_FIELDS = ("row", "out", "status", "error", "seconds", "worker", "frames", "image", "warnings")
#: how a CSV report joins a row's warnings in its one ``warnings`` cell
WARNING_SEPARATOR = " | "
_STATUSES = ("ok", "skipped", "failed")
#: what a JSON report adds per row: why an existing output was redone, the clip, the worker's model loads
_JSON_EXTRAS = ("redone", "describe", "loads")


def check_report_path(path: Any) -> Optional[Path]:
    """The report path (``.csv`` or ``.json``), checked before any work; ``None`` passes."""
    if path is None:
        return None
    if "\x00" in os.fspath(path):
        raise InputError("the batch report name contains a NUL character; give a plain file name such as report.csv")
    p = user_path(os.fspath(path))
    if p.suffix.lower() not in (".csv", ".json"):
        raise InputError(f"the batch report is a .csv or .json file, got {str(path)!r}")
    if p.is_dir():
        raise InputError(f"the batch report {p} is a folder; give a file name such as report.csv")
    return p


@dataclass
class BatchReport:
    """What a batch did, one entry per row (fields :data:`REPORT_FIELDS`, plus ``loads``:
    how many times the worker had loaded its models when the row finished)."""

    rows: List[Dict[str, Any]] = field(default_factory=list)
    engine: str = "local"
    workers: int = 1
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    @property
    def failed(self) -> List[Dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]

    def summary(self) -> Dict[str, Any]:
        return {"rows": len(self.rows), **{s: self.count(s) for s in _STATUSES}, "engine": self.engine,
                "workers": self.workers, "seconds": round(self.seconds, 3)}

    def write(self, path: Any) -> Path:
        """Write the report atomically: ``.json`` (summary + rows) or ``.csv`` (one line per row)."""
        p = check_report_path(path)
        assert p is not None
        rows = sorted(self.rows, key=lambda r: (r["row"] is None, r["row"] or 0))
        if p.suffix.lower() == ".json":
            keep = REPORT_FIELDS + _JSON_EXTRAS
            rows = [{k: r[k] for k in keep if k in r} for r in rows]
            text = json.dumps({"summary": self.summary(), "rows": rows}, indent=1, default=str)
        else:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=REPORT_FIELDS, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            for r in rows:
                cells = {k: ("" if r.get(k) is None else r.get(k)) for k in REPORT_FIELDS}
                cells["warnings"] = WARNING_SEPARATOR.join(r.get("warnings") or ())
                writer.writerow(cells)
            text = buf.getvalue()
        atomic_write_text(p, text, encoding="utf-8")
        return p


def read_report_frames(path: Any) -> Dict[str, int]:
    """``{absolute out path: frames}`` of the finished rows of an earlier report (CSV or JSON);
    empty when the file is missing or unreadable (resuming then checks the outputs alone)."""
    p = user_path(os.fspath(path))
    try:
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".json":
            rows = json.loads(text)["rows"]
        else:
            rows = list(csv.DictReader(io.StringIO(text)))
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as exc:
        if p.exists():
            log.warning("ignoring the earlier batch report %s: %s", p, exc)
        return {}
    frames: Dict[str, int] = {}
    for r in rows:
        try:
            if r.get("status") in ("ok", "skipped") and str(r.get("frames", "")).strip() not in ("", "None"):
                frames[str(user_path(str(r["out"])).absolute())] = int(r["frames"])
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
    return frames


def _entry(job: Dict[str, Any], **fields: Any) -> Dict[str, Any]:
    """A report entry for ``job`` (the columns of :data:`REPORT_FIELDS`), updated by ``fields``."""
    entry: Dict[str, Any] = {"row": job.get("row"), "out": str(job["out"]), "image": job.get("image"),
                             "status": "failed", "error": "", "frames": None, "worker": "", "seconds": None,
                             "loads": {}, "warnings": [], "warning_categories": []}
    entry.update(fields)
    return entry


def _category_name(category: type) -> str:
    # by name, not the class: a class defined in a worker's __main__ would not unpickle on the driver
    return f"{category.__module__}:{category.__qualname__}"


def _category(name: str) -> type:
    """The warning class named by :func:`_category_name` (``UserWarning`` if the driver lacks it)."""
    module, _, qualname = str(name).partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError):
        return UserWarning
    return obj if isinstance(obj, type) and issubclass(obj, Warning) else UserWarning


def _row_label(entry: Dict[str, Any]) -> str:
    """How messages name a row: ``row 3 (clips/b.mp4)``, or the output alone for a job without a row."""
    return f"row {entry['row']} ({entry['out']})" if entry.get("row") is not None else str(entry["out"])


def _warn_on_driver(entry: Dict[str, Any]) -> None:
    """Raise a row's recorded warnings again in this process, prefixed with the row."""
    categories = entry.get("warning_categories") or []
    messages = entry.get("warnings") or []
    warn_again(_row_label(entry), [(categories[i] if i < len(categories) else "builtins:UserWarning", m)
                                   for i, m in enumerate(messages)])


#: one row at a time per process (see recording_row); re-entrant, so a row that itself runs one
#: (a task building a dataset) does not wait for itself
_ROW_LOCK = threading.RLock()


@contextlib.contextmanager
def recording_row() -> Iterator[List[Tuple[str, str]]]:
    """Run the block as one row of a batch: alone in this process, even on a worker with
    several threads (a Dask worker started with ``--nthreads 4``), because Python's warning
    state, the GL context and a row's ffmpeg pipe are not shared between threads. Its warnings
    are recorded, not printed: the yielded list gets each distinct ``(category, message)``
    once (category by name, see :func:`warn_again`) when the block ends."""
    found: List[Tuple[str, str]] = []
    with _ROW_LOCK, warnings.catch_warnings(record=True) as caught:
        try:
            yield found
        finally:
            for w in caught:
                key = (_category_name(w.category), str(w.message))
                if key not in found:
                    found.append(key)


def warn_again(label: str, recorded: Sequence[Sequence[str]]) -> None:
    """Raise warnings that :func:`recording_row` recorded (maybe on another machine) in this
    process, each prefixed with ``label`` (which row or image said it)."""
    for category, message in recorded:
        # registry=None: every row says its own warnings even when an earlier batch in this
        # process said the same text; the user's filters ("ignore", "error") still apply
        warnings.warn_explicit(f"{label}: {message}", _category(category), __file__, 0,
                               module="flame_transit.batch", registry=None)


def run_row(task: Callable[[Dict[str, Any]], Dict[str, Any]], job: Dict[str, Any]) -> Dict[str, Any]:
    """Run one row on this worker and describe it (a report entry); see the module docstring.

    Warnings raised by the row are recorded, not printed (a pool or cluster worker would print
    them in Python's multi-line format, with no row): the entry's ``warnings`` holds their
    messages (each once) and ``warning_categories`` their classes by name.
    """
    with recording_row() as found:
        result = _run_row(task, job)
    for category, message in found:
        result["warning_categories"].append(category)
        result["warnings"].append(message)
    return result


def _run_row(task: Callable[[Dict[str, Any]], Dict[str, Any]], job: Dict[str, Any]) -> Dict[str, Any]:
    t0 = time.perf_counter()
    result = _entry(job, status="ok", worker=worker_id())
    redo = None
    if job.get("resume"):
        frames, problem = check_output(job["out"], job.get("expected_frames"))
        if problem is None:
            result.update(status="skipped", frames=frames)
        elif problem != "missing":
            redo = problem
    if result["status"] == "ok":
        try:
            result.update(task(job))
        except (FlameTransitError, OSError) as exc:
            result.update(status="failed", error=str(exc))
        if redo is not None:
            result["redone"] = redo
    result["seconds"] = round(time.perf_counter() - t0, 4)
    result["loads"] = load_counts()
    return result


def _lost_row(job: Dict[str, Any], error: BaseException) -> Dict[str, Any]:
    """Report entry of a row whose worker process died (the engine gave up retrying it)."""
    return _entry(job, status="failed", error=f"the worker running this row died ({type(error).__name__}: {error})")


def run_batch(
    jobs: Sequence[Dict[str, Any]],
    task: Callable[[Dict[str, Any]], Dict[str, Any]],
    *,
    engine: str = "local",
    address: Optional[str] = None,
    workers: Optional[int] = None,
    resume: bool = False,
    report: Any = None,
    progress: bool = True,
    on_result: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> BatchReport:
    """Run ``task`` for every job on an engine and collect the per-row report.

    Args:
        jobs: dicts with ``row``, ``out`` and the task's inputs.
        task: picklable ``task(job) -> {"frames": ..., ...}`` (module-level function or a
            ``functools.partial`` of one) that writes ``job["out"]`` atomically.
        engine, address, workers: see :func:`~flame_transit.batch.engines.open_engine`.
        resume: skip rows whose output exists and passes
            :func:`~flame_transit.batch.validate.check_output`; frame counts of an earlier
            ``report`` at the same path are checked too.
        report: ``.csv`` / ``.json`` path for the per-row report (written even when the batch
            is interrupted), or ``None``.
        progress: a tqdm bar over rows.
        on_result: called on the driver with each row's entry as it arrives (printing), after
            the row's warnings were raised again here, each prefixed with ``row N (out):``.

    Returns:
        :class:`BatchReport`; rows that failed are in ``report.failed``.
    """
    check_engine(engine, address, workers)
    report_path = check_report_path(report)
    earlier = read_report_frames(report_path) if resume and report_path is not None else {}
    todo = []
    for job in jobs:
        job = dict(job, resume=bool(resume))
        if resume:
            job["expected_frames"] = earlier.get(str(user_path(str(job["out"])).absolute()))
        todo.append(job)
    result = BatchReport(engine=engine)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"batch ({engine})", unit="row")
    t0 = time.perf_counter()
    try:
        with open_engine(engine, address=address, workers=workers) as eng:
            result.workers = eng.workers
            for entry in eng.map_unordered(functools.partial(run_row, task), todo, lost=_lost_row):
                result.rows.append(entry)
                _warn_on_driver(entry)
                if bar is not None:
                    bar.update(1)
                if on_result is not None:
                    on_result(entry)
    finally:
        result.seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        if report_path is not None:
            result.write(report_path)
    return result

