"""Clips per second for a batch of N clips (default 100), against the paper's 3.92 s per video.

    python -m benchmarks.bench_clips [--clips 100] [--size 512] [--renderer auto|gl|pytorch3d]

N rows of ``flame-transit render --batch`` (examples/face.jpg, the photo look, a different
instruction per row, the CLI's default clip: a transition with holds at both ends, mp4) run on
the local engine: one process, models loaded once by a warm-up row that is timed apart. On a
machine with a GPU, ``--renderer gl`` draws on its EGL driver and ``--renderer pytorch3d``
through PyTorch3D (when installed); on a CPU-only machine, GL is Mesa's llvmpipe. The paper
(IFED + I2FET + NED) reports 3.92 s per generated video on an RTX A6000 with a neural renderer:
a different renderer and clip, so the ratio says how long a user waits per clip, not which
renderer is better. Also ``python -m benchmarks --only clips``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

from .bench_batch import batch_jobs
from .common import Section

#: seconds per generated video in the paper (RTX A6000, neural renderer)
PAPER_S_PER_VIDEO = 3.92


def run(quick: bool = False, clips: Optional[int] = None, size: int = 512, renderer: str = "auto") -> Section:
    from flame_transit.batch import run_render_batch
    from flame_transit.render import get_renderer

    clips = clips or (4 if quick else 100)
    options = dict(size=size, look="photo", seed=0, renderer=renderer)
    sec = Section("clips", f"8. A batch of {clips} clips: clips per second against the paper's "
                           f"{PAPER_S_PER_VIDEO} s per video")
    with get_renderer(renderer) as probe:  # which device draws (the first frame starts it)
        probe.render(np.array([[-0.05, -0.05, 0.0], [0.05, -0.05, 0.0], [0.0, 0.05, 0.0]]), np.array([[0, 1, 2]]),
                     size=16)
        device = probe.device_info
    folder = Path(tempfile.mkdtemp(prefix="bench_clips_"))
    t_start = time.perf_counter()
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            t0 = time.perf_counter()
            warm = run_render_batch(batch_jobs(folder / "warm", 1), options, engine="local", progress=False)
            warm_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = run_render_batch(batch_jobs(folder, clips), options, engine="local", progress=False)
            batch_s = time.perf_counter() - t0
        frames = [r.get("frames", 0) for r in report.rows]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for rep in (warm, report):
        if rep.failed:
            raise RuntimeError(f"{len(rep.failed)} clips failed: {rep.failed[0]['error']}")
    per_clip = batch_s / clips
    table = sec.table(
        f"{clips} clips (examples/face.jpg, photo look, {size}², the CLI's default clip with holds, mp4) through "
        f"the batch's local engine in one process after one warm-up clip (imports, models, MediaPipe: "
        f"'warm-up'); renderer {renderer!r}: {device}.",
        ["clips", "frames per clip", "warm-up", "batch", "clips/s", "s per clip", "vs the paper's s per video"])
    table.rows.append([clips, f"{min(frames)}–{max(frames)}" if min(frames) != max(frames) else frames[0],
                       f"{warm_s:.1f} s", f"{batch_s:.1f} s", f"{clips / batch_s:.2f}", f"{per_clip:.2f} s",
                       f"{PAPER_S_PER_VIDEO / per_clip:.2f}× faster" if per_clip < PAPER_S_PER_VIDEO
                       else f"{per_clip / PAPER_S_PER_VIDEO:.2f}× slower"])
    sec.notes.append(f"{os.cpu_count()} CPUs visible; load average "
                     f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} at the end.")
    sec.data = {"clips": clips, "size": size, "renderer": renderer, "device": device, "warm_s": warm_s,
                "batch_s": batch_s, "frames": frames}
    sec.seconds = time.perf_counter() - t_start
    return sec


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_clips", description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=100)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--renderer", default="auto", help="auto, gl or pytorch3d")
    args = p.parse_args(argv)
    if args.clips < 1:
        print("--clips must be at least 1", file=sys.stderr)
        return 2
    from .common import standalone_report

    print(standalone_report("benchmarks.bench_clips", argv,
                            lambda: run(clips=args.clips, size=args.size, renderer=args.renderer)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
