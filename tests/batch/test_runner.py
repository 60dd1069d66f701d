"""run_batch on the local engine: per-row report, resume by validation, errors, worker cache."""

from __future__ import annotations

import csv
import functools
import json
import os
import socket
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flame_transit.batch import (
    ENGINES,
    BatchReport,
    check_engine,
    check_report_path,
    load_counts,
    open_engine,
    read_report_frames,
    run_batch,
    worker_cache,
)
from flame_transit.errors import InputError, InstructionWarning
from flame_transit.io_utils import atomic_path

CALLS = []


def _model() -> object:
    return object()


def write_clip(job, frames=4):
    """A fake task: an .npz with the clip arrays (``frames`` of them), written atomically."""
    CALLS.append(job["row"])
    if job["instruction"] == "bad":
        raise InputError("no expression in 'bad'")
    if job["instruction"] == "bug":
        raise RuntimeError("a bug, not a bad row")
    if job["instruction"] == "crash":  # the worker process dies (as if killed for memory)
        os._exit(3)
    if job["instruction"].startswith("warn"):  # a row that warns (twice: said once per row)
        for _ in range(2):
            warnings.warn(f"2 faces found in {job['instruction']}; using the largest", UserWarning)
        warnings.warn("ignored 'buddy'", InstructionWarning)
    model = worker_cache(("fake-model",), _model)
    with atomic_path(job["out"]) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, format="x", expression=np.zeros((frames, 2)), pose=np.zeros((frames, 15)),
                     vertices=np.zeros((frames, 3, 3)), faces=np.zeros((1, 3)), fps=5.0, times=np.arange(frames))
    return {"frames": frames, "model": id(model)}


def _jobs(folder, instructions):
    return [{"row": i + 2, "out": str(folder / f"clip_{i}.npz"), "image": None, "instruction": t}
            for i, t in enumerate(instructions)]


def test_report_rows_statuses_and_worker(tmp_path):
    jobs = _jobs(tmp_path, ["a", "bad", "c"])
    seen = []
    result = run_batch(jobs, write_clip, report=tmp_path / "report.json", progress=False, on_result=seen.append)
    assert [r["status"] for r in sorted(result.rows, key=lambda r: r["row"])] == ["ok", "failed", "ok"]
    assert len(seen) == 3 and result.count("ok") == 2 and [r["row"] for r in result.failed] == [3]
    assert "no expression" in result.failed[0]["error"]
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["summary"]["rows"] == 3 and doc["summary"]["failed"] == 1 and doc["summary"]["engine"] == "local"
    row = doc["rows"][0]
    assert row["row"] == 2 and row["frames"] == 4 and row["seconds"] >= 0
    assert row["worker"] == f"{socket.gethostname()}:{os.getpid()}"
    assert not (tmp_path / "clip_1.npz").exists()
    # the model was built once for the two good rows
    assert len({r["model"] for r in result.rows if r["status"] == "ok"}) == 1
    assert load_counts()["fake-model"] == 1


def test_csv_report_and_resume_redoes_only_broken_outputs(tmp_path):
    jobs = _jobs(tmp_path, ["a", "b", "c", "d"])
    report = tmp_path / "report.csv"
    run_batch(jobs, write_clip, report=report, progress=False)
    rows = list(csv.DictReader(report.open()))
    assert [r["status"] for r in rows] == ["ok"] * 4 and rows[0]["frames"] == "4"
    assert read_report_frames(report)[str(tmp_path / "clip_0.npz")] == 4
    # a torn file, a missing one, and a complete file with another frame count than reported
    (tmp_path / "clip_1.npz").write_bytes((tmp_path / "clip_1.npz").read_bytes()[:100])
    (tmp_path / "clip_2.npz").unlink()
    write_clip(dict(jobs[3], row=99), frames=6)
    CALLS.clear()
    result = run_batch(jobs, write_clip, resume=True, report=report, progress=False)
    by_row = {r["row"]: r for r in result.rows}
    assert sorted(CALLS) == [3, 4, 5]
    assert by_row[2]["status"] == "skipped" and by_row[2]["frames"] == 4
    assert by_row[3]["status"] == "ok" and "cannot read" in by_row[3]["redone"]
    assert by_row[4]["status"] == "ok" and "redone" not in by_row[4]
    assert "earlier run wrote 4" in by_row[5]["redone"]
    CALLS.clear()
    again = run_batch(jobs, write_clip, resume=True, report=report, progress=False)
    assert CALLS == [] and again.count("skipped") == 4


def test_without_resume_every_row_runs(tmp_path):
    jobs = _jobs(tmp_path, ["a", "b"])
    run_batch(jobs, write_clip, progress=False)
    CALLS.clear()
    run_batch(jobs, write_clip, progress=False)
    assert sorted(CALLS) == [2, 3]


def test_a_bug_stops_the_batch_and_the_report_keeps_what_finished(tmp_path):
    jobs = _jobs(tmp_path, ["a", "bug", "c"])
    with pytest.raises(RuntimeError, match="a bug"):
        run_batch(jobs, write_clip, report=tmp_path / "r.csv", progress=False)
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["row"], r["status"]) for r in rows] == [("2", "ok")]


def test_report_path_and_engine_checked_before_any_work(tmp_path, monkeypatch):
    CALLS.clear()
    with pytest.raises(InputError, match=r"\.csv or \.json"):
        run_batch(_jobs(tmp_path, ["a"]), write_clip, report=tmp_path / "r.txt", progress=False)
    with pytest.raises(InputError, match="unknown engine"):
        run_batch(_jobs(tmp_path, ["a"]), write_clip, engine="spark", progress=False)
    with pytest.raises(InputError, match="add --engine dask"):
        run_batch(_jobs(tmp_path, ["a"]), write_clip, address="tcp://127.0.0.1:1", progress=False)
    assert CALLS == []
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("ray", "distributed") else real(name, *a))
    with pytest.raises(InputError, match=r'pip install "flame_transit\[ray\]"'):
        check_engine("ray")
    with pytest.raises(InputError, match=r"flame_transit\[dask\]"):
        check_engine("Dask")
    with pytest.raises(InputError, match="positive whole number"):
        check_engine("local", workers=0)


def test_worker_cache_does_not_keep_a_failed_build():
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk hiccup")
        return "ok"

    with pytest.raises(OSError):
        worker_cache(("flaky-test",), flaky)
    assert worker_cache(("flaky-test",), flaky) == "ok" and worker_cache(("flaky-test",), flaky) == "ok"
    assert len(attempts) == 2


def test_local_engine_in_process_keeps_order_free_results():
    with open_engine("local") as engine:
        assert engine.workers == 1
        assert sorted(engine.map_unordered(functools.partial(pow, 2), [3, 1, 2])) == [2, 4, 8]


def test_report_round_trip_ignores_unreadable_reports(tmp_path):
    (tmp_path / "r.json").write_text("{not json")
    assert read_report_frames(tmp_path / "r.json") == {}
    assert read_report_frames(tmp_path / "absent.csv") == {}
    rep = BatchReport(rows=[{"row": 2, "out": str(tmp_path / "a.mp4"), "status": "ok", "frames": 7, "error": "",
                             "seconds": 0.1, "worker": "h:1", "image": None}])
    rep.write(tmp_path / "r.json")
    assert read_report_frames(tmp_path / "r.json") == {str(tmp_path / "a.mp4"): 7}


def test_local_process_pool_reports_each_worker_and_loads_once_per_process(tmp_path):
    jobs = _jobs(tmp_path, ["a", "b", "c", "d", "e"])
    result = run_batch(jobs, write_clip, workers=2, progress=False)
    assert result.count("ok") == 5 and result.workers == 2
    workers = {r["worker"] for r in result.rows}
    assert 1 <= len(workers) <= 2 and f":{os.getpid()}" not in "".join(workers)
    assert all(r["loads"]["fake-model"] == 1 for r in result.rows)


@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=12), address=st.one_of(st.none(), st.text(max_size=20)),
       workers=st.one_of(st.none(), st.integers(-3, 64)))
def test_fuzz_engine_choice_is_accepted_or_refused_clearly(name, address, workers):
    try:
        key = check_engine(name, address, workers)
    except InputError as exc:
        assert str(exc)
    else:
        assert key in ENGINES and (workers is None or workers >= 1)
        assert key != "local" or not address


@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=30))
def test_fuzz_report_names(name):
    try:
        p = check_report_path(name)
    except InputError as exc:  # the suffix, a folder, or a ~user that does not exist
        assert "report" in str(exc) or "expand" in str(exc)
    else:
        assert p.suffix.lower() in (".csv", ".json")


def test_row_warnings_name_their_row_and_go_into_the_report(tmp_path):
    # a row's warnings used to come out bare: nothing said which of the rows had two faces
    jobs = _jobs(tmp_path, ["a", "warn-b", "warn-c"])
    with pytest.warns(Warning) as caught:
        result = run_batch(jobs, write_clip, report=tmp_path / "r.json", progress=False)
    said = sorted(str(w.message) for w in caught)
    out1, out2 = jobs[1]["out"], jobs[2]["out"]
    assert said == sorted([f"row 3 ({out1}): 2 faces found in warn-b; using the largest",
                           f"row 3 ({out1}): ignored 'buddy'",
                           f"row 4 ({out2}): 2 faces found in warn-c; using the largest",
                           f"row 4 ({out2}): ignored 'buddy'"])
    # the category survives, so filters on InstructionWarning still work
    assert sorted(w.category.__name__ for w in caught) == ["InstructionWarning"] * 2 + ["UserWarning"] * 2
    rows = {r["row"]: r for r in json.loads((tmp_path / "r.json").read_text())["rows"]}
    assert rows[2]["warnings"] == []
    assert rows[3]["warnings"] == ["2 faces found in warn-b; using the largest", "ignored 'buddy'"]
    result.write(tmp_path / "r.csv")
    by_row = {r["row"]: r for r in csv.DictReader((tmp_path / "r.csv").open())}
    assert by_row["2"]["warnings"] == "" and by_row["4"]["warnings"] == "2 faces found in warn-c; using the largest | ignored 'buddy'"


def test_row_warnings_from_a_process_pool_come_back_to_the_driver(tmp_path, capfd):
    # pool children printed them in Python's multi-line format (file, line, source) and unlabelled
    jobs = _jobs(tmp_path, ["warn-a", "b", "warn-c"])
    with pytest.warns(Warning) as caught:
        result = run_batch(jobs, write_clip, workers=2, progress=False)
    assert result.count("ok") == 3
    assert sorted(str(w.message) for w in caught if w.category is UserWarning) == [
        f"row 2 ({jobs[0]['out']}): 2 faces found in warn-a; using the largest",
        f"row 4 ({jobs[2]['out']}): 2 faces found in warn-c; using the largest"]
    assert "Warning" not in capfd.readouterr().err  # the children printed nothing themselves


def test_rows_on_a_worker_with_several_threads_run_one_at_a_time_with_their_own_warnings(tmp_path):
    """A cluster worker may hand rows to several threads of one process (dask worker
    --nthreads 4): they run one after another, and each report entry has only its own row's
    warnings."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from flame_transit.batch import run_row

    running, most = [0], [0]
    guard = threading.Lock()

    def task(job):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return write_clip(job)
        finally:
            with guard:
                running[0] -= 1

    jobs = _jobs(tmp_path, [f"warn-{i}" for i in range(8)])
    with ThreadPoolExecutor(4) as pool:
        entries = list(pool.map(functools.partial(run_row, task), jobs))
    assert most[0] == 1
    for job, entry in zip(jobs, entries):
        assert entry["status"] == "ok"
        assert entry["warnings"] == [f"2 faces found in {job['instruction']}; using the largest", "ignored 'buddy'"]


def test_a_row_that_runs_a_row_does_not_wait_for_itself(tmp_path):
    """A task may itself run a batch row (a row that builds a dataset encodes each image as
    one): the per-process row lock is re-entrant, and the inner row's warnings stay its own."""
    from flame_transit.batch import run_row
    from flame_transit.batch.runner import recording_row

    def task(job):
        with recording_row() as inner:
            warnings.warn("inner only", UserWarning)
        assert [m for _, m in inner] == ["inner only"]
        return write_clip(job)

    entry = run_row(task, _jobs(tmp_path, ["warn-a"])[0])
    assert entry["status"] == "ok"
    assert entry["warnings"] == ["2 faces found in warn-a; using the largest", "ignored 'buddy'"]
