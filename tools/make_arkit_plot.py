#!/usr/bin/env python
"""Render ``docs/arkit_curves.png``: one clip's ARKit curves, and the ARKit avatar they drive.

Left: the ARKit curves of "turn this face from disgust to happiness" on ``examples/face.jpg``
(seed 0, 30 fps; shapes that reach 0.05). Right, per anchor (first and last frame): the head's
own mesh (its AUs and jaw), and the bundled ARKit-rigged head (``open_head_arkit.glb``'s shapes)
driven by the curves alone, shaded with the package's renderer, at the same framing.

    python tools/make_arkit_plot.py [--instruction TEXT] [--out docs/arkit_curves.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--instruction", default="turn this face from disgust to happiness")
    p.add_argument("--out", default=str(ROOT / "docs" / "arkit_curves.png"))
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flame_transit import animate
    from flame_transit.arkit import ARKIT_NAMES, arkit_shapes
    from flame_transit.render import get_renderer

    anim = animate(str(ROOT / "examples" / "face.jpg"), args.instruction, fps=30, seed=0)
    curves = anim.arkit
    t = np.arange(anim.num_frames) / anim.fps
    shown = [k for k in range(52) if curves[:, k].max() >= 0.05]
    # the avatar on this subject's identity, driven by the curves only
    base, deltas = arkit_shapes(anim.head, shape=anim.params.shape, offsets=anim.params.offsets)
    frames = [0, anim.num_frames - 1]
    exact = anim.vertices[frames]
    avatar = base[None] + np.einsum("tk,kvc->tvc", curves[frames], deltas)
    with get_renderer("gl") as r:
        both = np.concatenate([exact, avatar])
        images = r.render(both, anim.mesh_faces, size=(args.size, args.size))
    fig = plt.figure(figsize=(13, 5.2), dpi=110)
    ax = fig.add_axes([0.05, 0.1, 0.44, 0.8])
    cmap = plt.get_cmap("tab20")
    for i, k in enumerate(shown):
        ax.plot(t, curves[:, k], color=cmap(i % 20), lw=1.8, label=ARKIT_NAMES[k])
    for f, lab in zip(anim.anchor_frames, anim.trajectory.labels):
        ax.axvline(f / anim.fps, color="0.6", ls=":", lw=1)
        ax.text(f / anim.fps, 1.02, lab, ha="center", fontsize=9, color="0.3")
    ax.set(xlabel="time (s)", ylabel="ARKit weight", ylim=(0, 1.08), xlim=(0, t[-1]))
    ax.set_title(f'ARKit curves: "{args.instruction}"', fontsize=10, pad=16)
    ax.legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    titles = ["head, first frame", "head, last frame", "ARKit avatar, first", "ARKit avatar, last"]
    for i, (img, title) in enumerate(zip(images, titles)):
        a = fig.add_axes([0.68 + 0.16 * (i % 2), 0.52 - 0.46 * (i // 2), 0.15, 0.4])
        a.imshow(img)
        a.set_title(title, fontsize=8)
        a.axis("off")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}: {len(shown)} shapes move; end values "
          + ", ".join(f"{ARKIT_NAMES[k]} {curves[-1, k]:.2f}" for k in shown if curves[-1, k] >= 0.3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
