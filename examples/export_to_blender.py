#!/usr/bin/env python
"""Export a transition for Blender: an animated ``.glb`` and an ``.obj`` sequence, plus the steps.

* ``anim.glb`` -- the head with one named morph target (Blender: *shape key*) per action unit
  (``AU1`` ... ``AU43``, ``AU26`` = the jaw opening) and an animation ``expression_transition``
  that keys their weights over time. Blender's glTF importer turns this into a mesh with named
  shape keys and an action: press play, or edit the curves.
* ``curves.csv`` -- the same clip as ARKit's 52 blendshape curves in Live Link Face's CSV
  layout, for ARKit-rigged avatars (``examples/drive_arkit_avatar.py`` plays it on the bundled
  ARKit head in Blender).
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
  3. The object '{name}' has {targets} named shape keys, one per action unit (Object Data
     Properties > Shape Keys, e.g. {example_key!r}); the action '{action}' keys their
     weights over the {frames} frames. Press Space in the viewport to play.
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
# The frame rate and frame count are read from the file (its scene extras), before importing:
# Blender's glTF importer places the keys by time at the scene's frame rate.
import json
import struct

import bpy

path = {glb_str!r}
with open(path, "rb") as fh:
    header = fh.read(20)  # glTF header (12 bytes) + the JSON chunk's length and type
    extras = json.loads(fh.read(struct.unpack("<I", header[12:16])[0]))["scenes"][0].get("extras", {{}})
fps = float(extras.get("fps", 24.0))
scene = bpy.context.scene
scene.render.fps = max(1, round(fps))
scene.render.fps_base = scene.render.fps / fps  # exact for fractional rates (29.97)
scene.frame_start, scene.frame_end = 0, int(extras.get("frames", 1)) - 1  # frame i at time i / fps
bpy.ops.import_scene.gltf(filepath=path)
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

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    anim = animate(args.image or None, args.instruction, fps=args.fps, duration=args.duration, seed=args.seed)
    print(f"clip: {anim.describe()}, {anim.num_frames} frames of {anim.vertices.shape[1]} vertices")

    # .glb: named AU morph targets + one weights animation; fps and keyframe labels travel with it
    glb = anim.save(out / "anim.glb")
    curves = anim.save(out / "curves.csv")  # ARKit's 52 curves, Live Link Face CSV
    # .obj folder: the whole head (skin, eyes, mouth interior); sequence.json records the fps
    # and keyframes
    obj_dir = anim.save(str(out / "obj_sequence") + "/", overwrite=True)
    print(f"wrote {glb}\nwrote {curves}\nwrote {obj_dir}/ ({anim.num_frames} .obj files + sequence.json)")

    snippet = out / "blender_import_glb.py"
    fields = dict(
        fps=anim.fps, last=anim.num_frames - 1,
        glb=glb, glb_str=str(Path(glb).resolve()), frames=anim.num_frames, name="head",
        targets=len(anim.au_names), example_key="AU12", action="expression_transition",
        obj_dir=obj_dir, importer=HERE / "blender_import_obj_sequence.py", snippet=snippet,
    )
    snippet.write_text(GLB_SNIPPET.format(**fields), encoding="utf-8")
    print(f"wrote {snippet}\n")
    print(STEPS.format(**fields))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
