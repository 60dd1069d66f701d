"""Encoding speed: photo → FaceParams on CPU, warm (MediaPipe graph and head already loaded).

Measured on ``skimage.data.astronaut()`` (512 x 512): median (and min) of ``rounds`` repeats of

* ``encode`` end to end (load/normalise, flip-averaged MediaPipe detection = 2 passes, fit with
  offsets), the default;
* ``encode(flip_average=False)`` (one detection pass);
* the stages alone: MediaPipe detection (one pass), the landmark fit with and without offsets.

Each call does the work: the memos that serve a photo seen before (``flame_transit._memo``)
keep nothing while it is timed.

Run: ``python -m benchmarks.bench_encode [--quick] [--rounds N] [--overlay docs/encode_overlay.png]``
(also the ``encode`` section of ``python -m benchmarks``). Not a test.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

TARGET_MS = 50.0  # "a few tens of ms warm" for the fit


def _time(fn: Callable[[], Any], rounds: int, warmup: int = 2) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    ts: List[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    a = np.asarray(ts) * 1000.0
    return {"median_ms": float(np.median(a)), "min_ms": float(a.min()), "p90_ms": float(np.percentile(a, 90))}


def run(quick: bool = False, rounds: Optional[int] = None, overlay: Optional[str] = None) -> Dict[str, Any]:
    import skimage.data
    import torch

    from flame_transit.encode import detect_all_faces, detect_landmarks, encode, fit_landmarks, resolve_head
    from flame_transit.params import crop_to_image_matrix

    n = int(rounds or (7 if quick else 25))
    img = skimage.data.astronaut()
    head = resolve_head()
    lm = detect_landmarks(img)
    crop = crop_to_image_matrix(*lm.box())
    cases = {
        "encode (default: flip-averaged detection + fit + offsets)": lambda: encode(img, head),
        "encode(flip_average=False)": lambda: encode(img, head, flip_average=False),
        "MediaPipe detection, one pass": lambda: detect_all_faces(img, max_num_faces=1, flip_average=False),
        "fit with offsets": lambda: fit_landmarks(lm.points, head, crop),
        "fit without offsets": lambda: fit_landmarks(lm.points, head, crop, compute_offsets=False),
    }
    from flame_transit._memo import ContentMemo
    from flame_transit.encode import encoder, landmarks

    # the work itself, not the memos a photo seen before is served from (flame_transit._memo):
    # memos that keep nothing for the timings, the usual ones again after them
    kept = landmarks._DETECTIONS, encoder._FITS
    landmarks._DETECTIONS, encoder._FITS = ContentMemo(max_items=0), ContentMemo(max_items=0)
    try:
        results = {name: _time(fn, n) for name, fn in cases.items()}
    finally:
        landmarks._DETECTIONS, encoder._FITS = kept
    p = encode(img, head)
    aus = {k: round(v, 3) for k, v in p.extras["aus"].items() if v > 0.01}
    rows = [[name, f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}", f"{r['p90_ms']:.1f}"] for name, r in results.items()]
    fit_ms = results["fit with offsets"]["median_ms"]
    notes = [
        f"image 512x512 (skimage astronaut), {n} warm repeats, torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs visible; detection and fit memos off (each call does the work)",
        f"fit: {p.extras['iterations']} Gauss-Newton iterations; RMS landmark error / face width "
        f"{p.extras['fit_rms_model']:.4f} before offsets, {p.fit_rms:.2e} with offsets",
        f"AUs on the astronaut: {aus}",
    ]
    if overlay:
        from PIL import Image, ImageDraw

        from flame_transit.encode import draw_fit
        from flame_transit.io_utils import atomic_path

        model_only = encode(img, head, offsets=False)
        panels = []
        for params, label in ((model_only, f"parametric fit: RMS {model_only.fit_rms * 100:.2f}% of face width"),
                              (p, f"with per-subject offsets: RMS {p.fit_rms * 100:.1e}%")):
            panel = Image.fromarray(draw_fit(img, params, head))
            ImageDraw.Draw(panel).text((10, 8), label, fill=(255, 255, 0))
            panels.append(panel)
        sheet = Image.new("RGB", (sum(q.width for q in panels) + 8, max(q.height for q in panels)), (0, 0, 0))
        sheet.paste(panels[0], (0, 0))
        sheet.paste(panels[1], (panels[0].width + 8, 0))
        with atomic_path(overlay) as tmp:
            sheet.save(tmp, format="PNG")
        notes.append(f"overlay written to {overlay} (cyan: mesh edges, red: MediaPipe landmarks)")
    return {
        "title": "6. Encoding (photo → parameters)",
        "tables": [{"caption": "warm CPU time per 512² image (ms)", "headers": ["case", "median", "min", "p90"], "rows": rows}],
        "goals": [{
            "name": "landmark fit, warm",
            "target": f"≤ {TARGET_MS:.0f} ms",
            "measured": f"{fit_ms:.1f} ms",
            "met": bool(fit_ms <= TARGET_MS),
        }],
        "notes": notes,
        "data": {"timings": results, "fit_rms_model": p.extras["fit_rms_model"], "fit_rms": p.fit_rms, "aus": aus},
    }


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--overlay", default=None, help="also write the fit overlay PNG here")
    args = ap.parse_args(argv)
    res = run(quick=args.quick, rounds=args.rounds, overlay=args.overlay)
    print(res["title"])
    t = res["tables"][0]
    print(t["caption"])
    width = max(len(r[0]) for r in t["rows"])
    print(f"  {'case':<{width}}  {'median':>8} {'min':>8} {'p90':>8}")
    for r in t["rows"]:
        print(f"  {r[0]:<{width}}  {r[1]:>8} {r[2]:>8} {r[3]:>8}")
    for g in res["goals"]:
        print(f"goal {g['name']}: target {g['target']}, measured {g['measured']} -> {'MET' if g['met'] else 'NOT MET'}")
    for note in res["notes"]:
        print("-", note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
