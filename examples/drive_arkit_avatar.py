#!/usr/bin/env python
"""Play ARKit curves (a Live Link Face ``curves.csv``) on an ARKit-rigged head in Blender.

By default the avatar is the bundled open head rigged with ARKit's 52 shapes
(``flame_transit/head/data/open_head_arkit.glb``, built by ``tools/build_arkit_avatar.py``); any
``.glb`` whose shape keys carry ARKit's names works (matched case-insensitively, so
``EyeBlinkLeft`` and ``eyeBlinkLeft`` are the same). Make the curves with flame_transit::

    flame-transit export --image examples/face.jpg --instruction "from anger to surprise" --out curves.csv

then, in Blender (4.x/5.x)::

    blender --python examples/drive_arkit_avatar.py -- --curves curves.csv

or headless with Blender as a Python module (``pip install bpy``, Python 3.11), saving a .blend::

    python examples/drive_arkit_avatar.py --curves curves.csv --blend out/avatar.blend

The scene's frame rate is set first (from ``--fps``, else the CSV's timecodes, else 30): frame
``i`` of the CSV is keyed at frame ``i``. Each shape key gets one F-curve. The head and eye
rotation columns are left out (the open head's eyes are joints the .glb does not carry).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
AVATAR = HERE.parent / "flame_transit" / "head" / "data" / "open_head_arkit.glb"
ROTATIONS = {"headyaw", "headpitch", "headroll", "lefteyeyaw", "lefteyepitch", "lefteyeroll",
             "righteyeyaw", "righteyepitch", "righteyeroll"}


def read_curves(path):
    """``(names, rows, fps)`` from a Live Link Face CSV: the shape columns (header names),
    one list of floats per frame, and the nominal rate of the timecodes (None when under a
    second). Plain Python: runs inside Blender without flame_transit installed."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        table = [r for r in csv.reader(fh) if r]
    header = table[0]
    cols = [i for i, h in enumerate(header) if h.lower() not in ROTATIONS | {"timecode", "blendshapecount"}]
    rows = [[float(r[i]) for i in cols] for r in table[1:]]
    fps = None
    if header[0].lower() == "timecode":
        frames = [int(r[0].split(":")[3].split(".")[0]) for r in table[1:]]
        fps = next((float(frames[i - 1] + 1) for i in range(1, len(frames)) if frames[i] < frames[i - 1]), None)
    return [header[i] for i in cols], rows, fps


def drive(avatar, curves, fps=None, blend=None):
    """Import ``avatar`` into a fresh scene and key its shape keys from ``curves``; a report dict."""
    import bpy

    names, rows, csv_fps = read_curves(curves)
    rate = float(fps or csv_fps or 30.0)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = max(1, round(rate))
    scene.render.fps_base = scene.render.fps / rate
    scene.frame_start, scene.frame_end = 0, len(rows) - 1
    bpy.ops.import_scene.gltf(filepath=str(avatar))
    obj = next(o for o in scene.objects if o.type == "MESH" and o.data.shape_keys)
    blocks = {kb.name.lower(): kb for kb in obj.data.shape_keys.key_blocks[1:]}
    matched = [(k, blocks[n.lower()]) for k, n in enumerate(names) if n.lower() in blocks]
    for t, row in enumerate(rows):
        for k, kb in matched:
            kb.value = row[k]
            kb.keyframe_insert("value", frame=t)
    scene.frame_set(0)
    if blend:
        Path(blend).parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(blend).resolve()))
    missing = sorted(set(n.lower() for n in names) - set(blocks))
    return {"object": obj.name, "fps": rate, "frames": len(rows), "keyed": len(matched), "missing": missing}


def main(argv=None) -> int:
    if argv is None:  # under `blender --python script -- args`, the script's args follow "--"
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--curves", required=True, help="Live Link Face CSV (e.g. from anim.save('curves.csv'))")
    p.add_argument("--avatar", default=str(AVATAR), help="ARKit-rigged .glb (default: the bundled open head)")
    p.add_argument("--fps", type=float, default=None, help="frame rate (default: from the timecodes, else 30)")
    p.add_argument("--blend", default=None, help="save the scene to this .blend")
    args = p.parse_args(argv)
    report = drive(args.avatar, args.curves, args.fps, args.blend)
    print(f"keyed {report['keyed']} shape keys of {report['object']!r} over {report['frames']} frames at "
          f"{report['fps']:g} fps" + (f"; no shape key for {', '.join(report['missing'])}" if report["missing"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
