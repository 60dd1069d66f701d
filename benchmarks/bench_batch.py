"""Batch throughput: ``render --batch`` rows on one process vs a cluster engine with 2 workers.

    python -m benchmarks.bench_batch [--rows 8] [--engines dask,ray] [--workers 2] [--rounds 1]

Renders the same N rows (the example photo, photo look, a different instruction per row) with
``flame_transit.batch.run_render_batch`` on the local engine (this process, today's
``--batch``) and on each engine asked for (a local cluster of ``--workers`` processes on
127.0.0.1), alternating engines per round so machine load hits all of them alike. Each engine
first starts its cluster and renders one warm-up row per worker (timed apart), then the N rows;
clips per second are over those N rows. Prints a markdown section; ``python -m benchmarks --only batch`` puts
it in the report.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

from .common import REPO, Section, fmt_ratio, median

INSTRUCTIONS = ["from sadness to happiness", "from anger to surprise", "from fear to disgust",
                "from happiness to anger", "from surprise to sadness", "from disgust to fear"]
_MODULES = {"dask": "distributed", "ray": "ray"}


def batch_jobs(folder: Path, rows: int) -> List[Dict[str, Any]]:
    """``rows`` batch rows: the example photo, the instructions in turn, outputs in ``folder``."""
    photo = str(REPO / "examples" / "face.jpg")
    return [{"row": i + 2, "image": photo, "instruction": INSTRUCTIONS[i % len(INSTRUCTIONS)],
             "out": str(folder / f"clip_{i:04d}.mp4")} for i in range(rows)]


def _start(engine: str, workers: int) -> Any:
    """Start a local cluster on 127.0.0.1 (the engine's own start-up); returns (address, stop)."""
    from flame_transit.batch.engines import DaskEngine, RayEngine

    if engine == "dask":
        started = DaskEngine(None, workers)
        return started._cluster.scheduler_address, started.close
    if engine == "ray":
        started = RayEngine(None, workers)
        return None, started.close  # the batch's engine uses the running instance
    return None, lambda: None


def _one(engine: str, rows: int, workers: int, options: Dict[str, Any]) -> Dict[str, float]:
    """One batch on ``engine``: seconds to start its cluster, seconds for the rows, workers used."""
    import contextlib

    from flame_transit.batch import run_render_batch

    folder = Path(tempfile.mkdtemp(prefix=f"bench_batch_{engine}_"))
    t0 = time.perf_counter()
    address, stop = _start(engine, workers)
    start = time.perf_counter() - t0
    try:
        kw = dict(engine=engine, address=address, workers=None if engine == "local" else workers, progress=False)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            t0 = time.perf_counter()  # warm-up: one row per worker (imports, models, MediaPipe)
            warm = run_render_batch(batch_jobs(folder / "warm", 1 if engine == "local" else workers), options, **kw)
            warm_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = run_render_batch(batch_jobs(folder, rows), options, **kw)
            total = time.perf_counter() - t0
    finally:
        stop()
        shutil.rmtree(folder, ignore_errors=True)
    for rep in (warm, report):
        if rep.failed:
            raise RuntimeError(f"{len(rep.failed)} rows failed on {engine}: {rep.failed[0]['error']}")
    loads = max(r["loads"].get("models", 0) for r in report.rows)
    return {"start_s": start, "warm_s": warm_s, "batch_s": total, "model_loads": float(loads),
            "used": float(len({r["worker"] for r in report.rows}))}


def run(quick: bool = False, rows: Optional[int] = None, engines: Sequence[str] = ("dask", "ray"),
        workers: int = 2, rounds: Optional[int] = None) -> Section:
    rows = rows or (6 if quick else 12)
    rounds = rounds or 1
    options = dict(fps=15.0, duration=1.0, hold=0.0, size=256, look="photo", seed=0)
    sec = Section("batch", "7. Batch rows: one process vs a cluster engine with 2 workers")
    present = [e for e in engines if importlib.util.find_spec(_MODULES[e]) is not None]
    for e in engines:
        if e not in present:
            sec.notes.append(f"{e} is not installed (pip install \"flame_transit[{e}]\"): not measured.")
    names = ["local"] + present
    times: Dict[str, List[Dict[str, float]]] = {n: [] for n in names}
    t_start = time.perf_counter()
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(_one(name, rows, workers, options))
    import numpy as np

    local = np.array([t["batch_s"] for t in times["local"]])
    table = sec.table(
        f"{rows} rows (examples/face.jpg, photo look, 256², 15 fps, 1 s per transition, mp4), {rounds} round(s), "
        "engines alternating. Each engine first starts (a fresh local cluster on 127.0.0.1) and warms up with one "
        "row per worker (imports, models, MediaPipe: 'warm-up'), then renders the rows on warm workers "
        "('batch'). Ratio = engine clips/s ÷ local clips/s on the batch.",
        ["engine", "workers used", "cluster start", "warm-up", "batch", "clips/s", "vs local",
         "model loads per worker"])
    for name in names:
        batch = np.array([t["batch_s"] for t in times[name]])
        ratio = fmt_ratio(*_paired(local, batch)) if name != "local" else "1×"
        table.rows.append([name, int(max(t["used"] for t in times[name])),
                           "—" if name == "local" else f"{median([t['start_s'] for t in times[name]]):.1f} s",
                           f"{median([t['warm_s'] for t in times[name]]):.1f} s",
                           f"{median(batch):.1f} s", f"{rows / median(batch):.2f}", ratio,
                           int(max(t["model_loads"] for t in times[name]))])
    sec.data = {"rows": rows, "rounds": rounds, "times": times}
    sec.notes.append(f"This machine: {os.cpu_count()} cores, shared with other work while it ran (load average "
                     f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} at the end); two workers on two "
                     "shared cores can at best double the rate of one process.")
    sec.seconds = time.perf_counter() - t_start
    return sec


def _paired(local: Any, other: Any) -> Any:
    """Median and IQR of local/other time ratios (= other clips/s ÷ local clips/s)."""
    import numpy as np

    r = np.asarray(local) / np.asarray(other)
    if len(r) < 2:
        return float(r[0]), None, None
    return float(np.median(r)), float(np.percentile(r, 25)), float(np.percentile(r, 75))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_batch", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--engines", default="dask,ray", help="comma-separated: dask, ray")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)
    from .common import standalone_report

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in _MODULES]
    if unknown:
        print(f"unknown engine(s) {unknown}; choose from {list(_MODULES)}", file=sys.stderr)
        return 2
    print(standalone_report("benchmarks.bench_batch", argv,
                            lambda: run(rows=args.rows, engines=engines, workers=args.workers, rounds=args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
