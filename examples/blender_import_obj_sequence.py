"""Blender script: import a flame_transit ``.obj`` sequence as ONE mesh with one shape key per frame.

flame_transit writes an ``.obj`` sequence as a folder of ``frame_0000.obj``, ``frame_0001.obj``,
... (same vertices and triangles in every file) plus ``sequence.json`` (fps, keyframe labels).
Blender's own OBJ importer would make one object per file; this script makes one object whose
shape key ``i`` is frame ``i``, keyed so that key ``i`` is 1 on frame ``i`` and 0 on the frames
before and after (linear), which plays the frames back exactly. (The ``.glb`` export already
holds the same thing; use this for the ``.obj`` sequence.)

Run it one of three ways:

* command line: ``blender --python examples/blender_import_obj_sequence.py -- out/export_to_blender/obj_sequence``
* Text Editor: open this file, set ``FOLDER`` below, press *Run Script*;
* Python console: ``exec(open("/path/to/blender_import_obj_sequence.py").read())`` then
  ``import_obj_sequence("/path/to/obj_sequence")``.

Axes: flame_transit's head frame is +Y up, +Z towards the viewer (metres); Blender is +Z up,
so points are mapped ``(x, y, z) -> (x, -z, y)`` like Blender's glTF/OBJ importers do (the face
looks at Blender's front view, numpad 1). The head is ~0.2 m tall: press numpad ``.`` to frame it.

Status: the reading of the files (:func:`read_obj_sequence`, plain Python) is tested by
flame_transit's test suite; the Blender part was tried on Blender 4.2 (the ``bpy`` module) but is
**not** part of the test suite (no Blender there). Only ``v`` and ``f`` lines are read.
"""

import json
import os
import sys

FOLDER = ""  # set this when running from Blender's Text Editor


def read_obj(path):
    """Vertices ``[(x, y, z), ...]`` and 0-based triangles/polygons of one ``.obj`` file."""
    verts, faces = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                verts.append(tuple(float(x) for x in parts[1:4]))
            elif parts[0] == "f":  # "f 1 2 3" or "f 1/1/1 2/2/2 3/3/3"; negative = from the end
                idx = [int(tok.split("/")[0]) for tok in parts[1:]]
                faces.append(tuple(i - 1 if i > 0 else len(verts) + i for i in idx))
    return verts, faces


def read_obj_sequence(folder):
    """Read a flame_transit ``.obj`` folder.

    Returns a dict with ``fps``, ``names`` (one shape-key name per frame, keyframe labels
    appended), ``frames`` (list of vertex lists) and ``faces`` (from the first file).
    """
    manifest_path = os.path.join(folder, "sequence.json")
    manifest = {}
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    files = manifest.get("files") or sorted(f for f in os.listdir(folder) if f.lower().endswith(".obj"))
    if not files:
        raise ValueError(f"no .obj files in {folder}")
    labels = dict(zip(manifest.get("anchor_frames", []), manifest.get("anchor_labels", [])))
    frames, faces = [], None
    for i, name in enumerate(files):
        verts, f = read_obj(os.path.join(folder, name))
        if frames and len(verts) != len(frames[0]):
            raise ValueError(f"{name} has {len(verts)} vertices, frame 0 has {len(frames[0])}")
        frames.append(verts)
        faces = f if faces is None else faces
    names = [os.path.splitext(n)[0] + (f"_{labels[i]}" if i in labels else "") for i, n in enumerate(files)]
    return {"fps": float(manifest.get("fps", 30.0)), "names": names, "frames": frames, "faces": faces}


def to_blender(v):
    """flame_transit (+Y up, +Z to the viewer) -> Blender (+Z up, -Y to the viewer)."""
    x, y, z = v
    return (x, -z, y)


def _fcurves(id_data):
    """The F-curves animating ``id_data`` (Blender 4.x legacy actions and 5.x layered ones)."""
    anim = id_data.animation_data
    try:
        return list(anim.action.fcurves)  # Blender <= 4.5
    except AttributeError:  # Blender 5: an action holds channel bags per slot
        from bpy_extras import anim_utils

        return list(anim_utils.action_get_channelbag_for_slot(anim.action, anim.action_slot).fcurves)


def import_obj_sequence(folder, name="flame_transit_head", first_frame=1):
    """Create the object in the current scene; returns it. Needs Blender (``bpy``)."""
    import bpy

    seq = read_obj_sequence(folder)
    frames = seq["frames"]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([to_blender(v) for v in frames[0]], [], seq["faces"])
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)

    obj.shape_key_add(name="Basis", from_mix=False)  # = frame 0
    last = len(frames) - 1
    for i, verts in enumerate(frames):
        key = obj.shape_key_add(name=seq["names"][i], from_mix=False)
        key.data.foreach_set("co", [c for v in verts for c in to_blender(v)])
        # one-hot: 1 on its own frame, 0 on its neighbours (and constant 0 further out)
        for frame, value in ((i - 1, 0.0), (i, 1.0), (i + 1, 0.0)):
            if 0 <= frame <= last:
                key.value = value
                key.keyframe_insert("value", frame=first_frame + frame)
    for fcurve in _fcurves(mesh.shape_keys):  # linear blending between frames, like playback
        for point in fcurve.keyframe_points:
            point.interpolation = "LINEAR"

    scene = bpy.context.scene
    fps = seq["fps"]
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps  # exact for fractional rates (29.97)
    scene.frame_start, scene.frame_end = first_frame, first_frame + len(frames) - 1
    scene.frame_set(first_frame)
    print(f"imported {len(frames)} frames of {len(frames[0])} vertices from {folder} at {fps:g} fps")
    return obj


def _folder_from_args():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    return argv[0] if argv else FOLDER


if __name__ == "__main__":
    folder = _folder_from_args()
    if folder:
        import_obj_sequence(folder)
    else:
        print("\n\n".join(__doc__.split("\n\n")[2:4]))  # how to run it
