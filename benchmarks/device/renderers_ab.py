"""Render the frames of one warm photo-look clip through each renderer, interleaved.

    python benchmarks/device/renderers_ab.py [--rounds 3] [--size 512] [--profile]

Variants: ``gl``; ``pytorch3d`` (all layers of a frame in one rasteriser call); and
``pytorch3d, a call a layer`` (the same rasteriser call made for each layer alone, as before
the batch). The clip is animated once (examples/face.jpg, "from disgust to happiness", 77
frames with holds) and ``Animation.frames`` is rendered again in each round, after one warm-up each. Prints
median seconds a clip and frames a second, and the largest pixel difference from ``gl`` (the GL
backend anti-aliases edges, PyTorch3D does not). ``--profile`` then prints a cProfile of one
PyTorch3D clip: on a GPU, waiting for the device shows on the call that synchronises. On an
H200 a frame took 29 ms through PyTorch3D against 3.6 ms through GL, and where it goes is not
known yet.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--profile", action="store_true", help="also print a cProfile of one PyTorch3D clip")
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    import dataclasses

    from flame_transit import animate
    from flame_transit.render.backends.torch3d import PyTorch3DRenderer

    base = animate(str(REPO / "examples" / "face.jpg"), "from disgust to happiness", size=args.size)

    def clip(renderer: str) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            anim = dataclasses.replace(base, render_options=dict(base.render_options, renderer=renderer),
                                       _frames=None)  # the head's vertices are kept, the frames made again
            return np.asarray(anim.frames)
        return run

    batched = PyTorch3DRenderer._rasterize_layers

    def per_layer() -> np.ndarray:  # the batched call with one layer at a time
        PyTorch3DRenderer._rasterize_layers = lambda self, layers: [batched(self, [l])[0] for l in layers]
        try:
            return clip("pytorch3d")()
        finally:
            PyTorch3DRenderer._rasterize_layers = batched

    variants: Dict[str, Callable[[], np.ndarray]] = {
        "gl": clip("gl"), "pytorch3d": clip("pytorch3d"), "pytorch3d, a call a layer": per_layer}
    frames = {name: fn() for name, fn in variants.items()}  # warm-up, and the frames compared
    times: Dict[str, List[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
    n = len(frames["gl"])
    print(f"{n} frames {args.size}², {args.rounds} rounds, medians:")
    for name, ts in times.items():
        med = float(np.median(ts))
        diff = int(np.abs(frames[name].astype(int) - frames["gl"].astype(int)).max())
        mean = float(np.abs(frames[name].astype(int) - frames["gl"].astype(int)).mean())
        print(f"  {name:28s} {med:7.3f} s a clip  {n / med:7.1f} frames/s  vs gl: max {diff}, mean {mean:.3f}")
    if args.profile:  # cProfile: on a GPU, the waits for the device land on the call that syncs
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(variants["pytorch3d"])
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
