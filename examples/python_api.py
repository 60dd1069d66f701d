#!/usr/bin/env python
"""flame_transit from Python: one photo + one instruction -> an expression transition.

What this shows, in order:

1. ``animate(photo, instruction)`` -- the one call that runs the whole pipeline;
2. what it returns: per-frame FLAME-layout parameters, the anchor expressions (a small table of
   the action units each anchor uses) and the meshes;
3. saving: ``.mp4`` video, ``.png`` contact sheets (evenly spaced frames; the keyframes),
   ``.npz`` parameters + meshes, and the expression-trajectory plot;
4. diversity: the model is a conditional VAE, so ``seed`` picks a sample, ``temperature`` scales
   the sampling noise (0 = the model's typical expression) and ``generate_anchors(...,
   num_samples=N)`` draws several samples at once.

Run (offline, defaults use the bundled photo and write into ./out/python_api/)::

    python examples/python_api.py
    python examples/python_api.py --instruction "from sad to neutral, then very happy" --seed 3
    python examples/python_api.py --help
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--image", default=str(HERE / "face.jpg"), help="face photo (default: the bundled example)")
    p.add_argument("--instruction", default="turn this face from disgust to happiness")
    p.add_argument("--out", default="out/python_api", help="output folder")
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--duration", type=float, default=1.5, help="seconds per transition")
    p.add_argument("--size", type=int, default=384, help="frame size in pixels")
    p.add_argument("--seed", type=int, default=0, help="sample of the CVAE (same seed, same clip)")
    p.add_argument("--temperature", type=float, default=1.0, help="latent noise scale (0 = typical expression)")
    p.add_argument("--samples", type=int, default=3, help="how many samples to compare in the diversity section (at least 2)")
    return p.parse_args(argv)


def au_table(names, anchors, threshold: float = 0.1) -> str:
    """A text table: one row per action unit that some anchor uses, one column per anchor."""
    expr = anchors.expression.numpy()  # (K, E), AU intensities on the open head (1.0 = strong)
    jaw_deg = np.degrees(anchors.jaw_pose.numpy()[:, 0])  # jaw opening = rotation about +X
    used = [i for i in range(expr.shape[1]) if np.abs(expr[:, i]).max() >= threshold]
    cols = [f"{label:>11s}" for label in anchors.labels]
    lines = [f"{'':8s}" + "".join(cols)]
    for i in used:
        lines.append(f"{names[i]:8s}" + "".join(f"{expr[k, i]:11.2f}" for k in range(len(expr))))
    lines.append(f"{'jaw open':8s}" + "".join(f"{d:7.1f} deg" for d in jaw_deg))
    return "\n".join(lines)


def top_aus(names, row, n: int = 4) -> str:
    order = np.argsort(-row)[:n]
    return " ".join(f"{names[i]}={row[i]:.2f}" for i in order if row[i] > 0.05)


def main(argv=None) -> int:
    args = parse_args(argv)
    # heavy imports after argparse, so --help is instant
    from flame_transit import animate
    from flame_transit.transit import generate_anchors

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. the whole pipeline in one call: encode the photo (MediaPipe + fit of the open head),
    #    parse the instruction, sample anchor expressions (I2FET), interpolate a trajectory.
    #    Frames are rendered lazily, on the first save to a picture/video format.
    anim = animate(args.image, args.instruction, fps=args.fps, duration=args.duration, size=args.size,
                   seed=args.seed, temperature=args.temperature)
    print(f"clip: {anim.describe()}, {anim.num_frames} frames")

    # 2. the parameters (FLAME layout; on the bundled open head the expression coordinates are
    #    FACS action units, named in head.expression_names)
    p, names = anim.params, list(anim.head.expression_names)
    print(f"  shape {tuple(p.shape.shape)}  expression {tuple(p.expression.shape)}  pose {tuple(p.pose.shape)}"
          f"  cam {tuple(p.cam.shape)}  vertices {anim.vertices.shape} (metres)")
    print(f"  keyframes {anim.trajectory.labels} reached at frames {anim.anchor_frames}")
    jaw_open = np.degrees(p.pose[:, 6].numpy())  # pose[6:9] = jaw axis-angle; +X rotation opens it
    print(f"  jaw opening over the clip: {jaw_open.min():.1f} to {jaw_open.max():.1f} deg")
    print("\nanchor expressions (action-unit intensities):")
    print(au_table(names, anim.anchors))

    # 3. outputs; the suffix picks the format
    for name in ("clip.mp4", "sheet.png", "params.npz"):
        print(f"wrote {anim.save(out / name)}")
    # a sheet of just the keyframes (options go to flame_transit.viz.contact_sheet)
    print(f"wrote {anim.save(out / 'keyframes.png', indices=anim.anchor_frames)}")
    print(f"wrote {anim.save_plot(out / 'trajectory.png')}")
    with np.load(out / "params.npz") as npz:  # plain numpy, no pickle
        print(f"  params.npz keys: {', '.join(sorted(npz.files)[:12])}, ...")

    # 4. diversity. Same seed -> same anchors; another seed -> another sample; temperature 0 ->
    #    the mode. generate_anchors is the transit stage on its own (no photo needed, but with
    #    subject= the anchors are built on this person's neutral face, as animate does).
    common = dict(subject=anim.subject, head=anim.head)
    samples = generate_anchors(args.instruction, seed=args.seed, num_samples=max(args.samples, 2),
                               temperature=args.temperature, **common)
    mode = generate_anchors(args.instruction, seed=args.seed, temperature=0.0, **common)
    again = generate_anchors(args.instruction, seed=args.seed, temperature=args.temperature, **common)
    print(f"\nsame seed again -> same anchors: {np.allclose(again.expression.numpy(), anim.anchors.expression.numpy())}")
    last = len(mode) - 1  # the expression the clip ends on
    print(f"diversity of the last anchor ({mode.labels[last]!r}), top action units:")
    print(f"  temperature 0 (mode): {top_aus(names, mode.expression[last].numpy())}")
    for i, s in enumerate(samples):
        print(f"  sample {i}:             {top_aus(names, s.expression[last].numpy())}")
    spread = np.std(np.stack([s.expression[last].numpy() for s in samples]), axis=0).max()
    print(f"  largest per-AU standard deviation across samples: {spread:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
