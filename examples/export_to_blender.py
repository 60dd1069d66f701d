#!/usr/bin/env python
"""Export a transition for Blender: an animated ``.glb`` and an ``.obj`` sequence, plus the steps.

* ``anim.glb`` -- one mesh whose morph targets (Blender: *shape keys*) are the frames, and an
  animation ``expression_transition`` that keys them one after the other. Blender's glTF
  importer turns this into a mesh with shape keys and an action: press play.
* ``obj_sequence/`` -- ``frame_0000.obj`` ... with ``sequence.json`` (fps, keyframes), for tools
  that read OBJ. ``examples/blender_import_obj_sequence.py`` imports such a folder into Blender as
  one mesh with one shape key per frame.

Both are in metres with +Y up and +Z towards the viewer (glTF's convention; Blender's importers
turn this into its +Z up). This script also writes ``blender_import_glb.py`` next to the exports:
a snippet that sets the scene frame rate and imports the ``.glb`` in one go.

Run (offline, defaults use the bundled photo and write into ./out/export_to_blender/)::

    python examples/export_to_blender.py
    python examples/export_to_blender.py --instruction "from neutral to very surprised" --fps 30
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEPS = """\
Blender (4.x / 5.x), the .glb:
  1. Output Properties > Format > Frame Rate: {fps:g} fps (the importer places the keys by time,
     at the scene's frame rate, so set it first). Frame Start 0, End {last}.
  2. File > Import > glTF 2.0 (.glb/.gltf) > {glb}
  3. The object '{name}' has {frames} shape keys, one per frame (Object Data Properties >
     Shape Keys; keyframes carry their label, e.g. {example_key!r}); the action
     '{action}' keys them in turn. Press Space in the viewport to play.
  4. The head is about 0.2 m tall: View > Frame Selected (numpad .).
  Or do 1-2 in one go: in Blender's Scripting workspace open and run {snippet}

Blender, the .obj sequence ({obj_dir}):
  File > Import > Wavefront (.obj) gives one object per file; to get ONE mesh with a shape key
  per frame, run examples/blender_import_obj_sequence.py:
    blender --python {importer} -- {obj_dir}
"""

GLB_SNIPPET = """\
# Paste into Blender's Text Editor (Scripting workspace) and press Run Script.
# Written by examples/export_to_blender.py for {glb}
import bpy

scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = {fps_int}, {fps_base!r}  # the clip's {fps:g} fps
scene.frame_start, scene.frame_end = 0, {last}  # the importer keys frame i at time i / fps
bpy.ops.import_scene.gltf(filepath={glb_str!r})
scene.frame_set(0)
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--image", default=str(HERE / "face.jpg"), help="face photo ('' = the bundled neutral head)")
    p.add_argument("--instruction", default="change this face from anger to surprise")
    p.add_argument("--out", default="out/export_to_blender", help="output folder")
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--duration", type=float, default=1.5, help="seconds per transition")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from flame_transit import animate
    from flame_transit.export import save_obj_sequence

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    anim = animate(args.image or None, args.instruction, fps=args.fps, duration=args.duration, seed=args.seed)
    traj = anim.trajectory
    print(f"clip: {anim.describe()}, {anim.num_frames} frames of {anim.vertices.shape[1]} vertices")

    # .glb: morph targets + weights animation; fps and keyframe labels travel with the file
    glb = anim.save(out / "anim.glb")
    # .obj folder: called through save_obj_sequence with the trajectory so that sequence.json
    # records the clip's fps and keyframes (anim.save("dir/") writes the meshes but, in this
    # version, leaves fps at 30 and the keyframe list empty in the manifest)
    obj_dir = save_obj_sequence(out / "obj_sequence", anim.vertices, params=traj, head=anim.head, overwrite=True)
    print(f"wrote {glb}\nwrote {obj_dir}/ ({anim.num_frames} .obj files + sequence.json)")

    fps_int = max(1, round(anim.fps))
    snippet = out / "blender_import_glb.py"
    fields = dict(
        fps=anim.fps, fps_int=fps_int, fps_base=fps_int / anim.fps, last=anim.num_frames - 1,
        glb=glb, glb_str=str(Path(glb).resolve()), frames=anim.num_frames, name="head",
        example_key=f"frame_{traj.anchor_frames[-1]:04d}_{traj.labels[-1]}", action="expression_transition",
        obj_dir=obj_dir, importer=HERE / "blender_import_obj_sequence.py", snippet=snippet,
    )
    snippet.write_text(GLB_SNIPPET.format(**fields), encoding="utf-8")
    print(f"wrote {snippet}\n")
    print(STEPS.format(**fields))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
