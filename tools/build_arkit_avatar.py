#!/usr/bin/env python
"""Build the ARKit-rigged open head: ``flame_transit/head/data/open_head_arkit.glb``.

The bundled open head (neutral identity, the whole mesh: skin, eyes, irises, mouth interior) with
ARKit's 52 blendshapes as named morph targets (``mesh.extras.targetNames`` = Apple's names and
order), made by :func:`flame_transit.arkit.arkit_shapes` from the head's own action units and
joints (docs/ARKIT.md lists which AU or joint makes each shape, and which shapes stay empty).
No animation: drive it with ARKit curves, e.g. ``examples/drive_arkit_avatar.py`` plays a
``curves.csv`` on it in Blender.

    python tools/build_arkit_avatar.py [--out PATH] [--normals]

Position deltas only by default (viewers recompute nothing, so shading keeps the neutral face's
normals; ``--normals`` adds normal deltas at about twice the size).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv=None) -> int:
    from flame_transit.arkit import ARKIT_AVATAR_PATH, ARKIT_NAMES, ARKIT_WITHOUT_AU, arkit_recipes, arkit_shapes
    from flame_transit.export.gltf import write_morph_glb
    from flame_transit.head import load_head

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ARKIT_AVATAR_PATH))
    p.add_argument("--normals", action="store_true", help="also store normal deltas")
    args = p.parse_args(argv)
    head = load_head()
    base, deltas = arkit_shapes(head)
    recipes = arkit_recipes()
    empty = [n for n, d in zip(ARKIT_NAMES, deltas) if not d.any()]
    extras = {
        "generator": "flame_transit tools/build_arkit_avatar.py",
        "head_name": head.name,
        "rig": "ARKit 52 blendshapes (Apple names and order)",
        "units": "metres; +X subject's left, +Y up, +Z towards the viewer",
        "recipes": {k: list(v) for k, v in recipes.items()},
        "empty_shapes": {n: ARKIT_WITHOUT_AU.get(n, "") for n in empty},
    }
    out = write_morph_glb(args.out, base, head.mesh_faces, deltas, ARKIT_NAMES, include_normals=args.normals,
                          extras=extras, name="open_head_arkit")
    print(f"wrote {out} ({Path(out).stat().st_size / 1024:.0f} KiB, {len(ARKIT_NAMES)} shapes, {len(empty)} empty: "
          f"{', '.join(empty)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
