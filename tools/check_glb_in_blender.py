#!/usr/bin/env python
"""Import a flame_transit ``.glb`` into Blender (``bpy``) and check what an animator gets.

Checks, for each file given:

* the scene's frame rate is set from the file's ``scene.extras.fps`` *before* importing (Blender's
  glTF importer places keys by time at the scene's rate; it keeps 24 fps unless told);
* the mesh imports with one shape key per morph target, named as ``mesh.extras.targetNames``;
* with an animation: one action on the shape keys, with one F-curve per target, keyed over
  ``frames`` frames at the file's fps (last key at frame ``frame_start + frames - 1``), and the
  mesh Blender evaluates at the last frame matches the file's own morph at its last key.

Prints one JSON line per file and exits 1 when a check fails. Needs Blender as a Python module
(``pip install bpy``, Python 3.11)::

    python tools/check_glb_in_blender.py anim.glb [avatar.glb ...]
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path


def read_glb_json(path: Path) -> dict:
    with open(path, "rb") as fh:
        header = fh.read(20)
        return json.loads(fh.read(struct.unpack("<I", header[12:16])[0]))


def check(path: Path) -> dict:
    import bpy
    import numpy as np

    tree = read_glb_json(path)
    extras = tree["scenes"][0].get("extras", {})
    names = tree["meshes"][0]["extras"]["targetNames"]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    fps = float(extras.get("fps", 24.0))
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps
    bpy.ops.import_scene.gltf(filepath=str(path))
    meshes = [o for o in scene.objects if o.type == "MESH"]
    report = {"file": str(path), "fps_scene": scene.render.fps / scene.render.fps_base, "objects": len(meshes)}
    problems = []
    if len(meshes) != 1:
        problems.append(f"expected one mesh object, got {len(meshes)}")
        return {**report, "ok": False, "problems": problems}
    obj = meshes[0]
    keys = obj.data.shape_keys
    got = [k.name for k in keys.key_blocks][1:] if keys else []  # [0] is the Basis
    report["shape_keys"] = len(got)
    if got != list(names):
        problems.append(f"shape keys {got[:5]}... differ from targetNames {names[:5]}...")
    if tree.get("animations"):
        action = keys.animation_data.action if keys and keys.animation_data else None
        if action is None:
            problems.append("no action on the shape keys")
        else:
            curves = list(getattr(action, "fcurves", None) or [])
            if not curves:  # Blender 4.4+: layered actions keep the curves in channelbags
                curves = [fc for layer in action.layers for strip in layer.strips
                          for bag in strip.channelbags for fc in bag.fcurves]
            frames = [p.co[0] for fc in curves for p in fc.keyframe_points]
            first, last = min(frames), max(frames)
            report.update(action=action.name, fcurves=len(curves), first_key=first, last_key=last)
            want = int(extras.get("frames", 0))
            if len(curves) != len(names):
                problems.append(f"{len(curves)} F-curves for {len(names)} targets")
            if want and abs((last - first) - (want - 1)) > 1e-3:
                problems.append(f"keys span {last - first} frames, the file has {want} frames at {fps} fps")
            # the mesh Blender shows at the last frame == base + weights[last] @ deltas of the file
            scene.frame_set(int(round(last)))
            dg = bpy.context.evaluated_depsgraph_get()
            ev = obj.evaluated_get(dg).to_mesh()
            shown = np.array([v.co[:] for v in ev.vertices])
            basis = np.array([v.co[:] for v in keys.key_blocks[0].data])
            mixed = basis.copy()
            for fc in curves:
                kb = keys.key_blocks[fc.data_path.split('"')[1]]
                mixed += fc.evaluate(last) * (np.array([v.co[:] for v in kb.data]) - basis)
            report["last_frame_max_diff_m"] = float(np.abs(shown - mixed).max())
            moved = float(np.abs(shown - basis).max())
            report["last_frame_moves_m"] = moved
            if report["last_frame_max_diff_m"] > 1e-5 or moved <= 0:
                problems.append("the evaluated mesh at the last frame does not follow the shape keys")
    return {**report, "ok": not problems, "problems": problems}


def main(argv=None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print(__doc__)
        return 2
    ok = True
    for p in paths:
        r = check(p)
        ok &= r["ok"]
        print(json.dumps(r))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
