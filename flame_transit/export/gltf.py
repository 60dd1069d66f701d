"""``.glb`` export: the clip as one mesh with per-frame morph targets and a weights animation.

What the file holds (glTF 2.0, binary):

* one mesh (one triangle primitive) whose base ``POSITION`` (and ``NORMAL``) is **frame 0**;
* **T morph targets**, target ``i`` = frame ``i`` minus frame 0 (``POSITION`` deltas, plus
  ``NORMAL`` deltas when ``include_normals``); target 0 is all zeros so that target index ==
  frame index; their names (``frame_0000``, ... with the keyframe label appended on keyframes) are
  in ``mesh.extras.targetNames``, which Blender uses as shape-key names;
* one animation ``"expression_transition"`` with one channel on the mesh node's ``weights``:
  T keyframes at ``t_i = i / fps`` seconds, weights at keyframe ``i`` = one-hot ``e_i``, LINEAR
  interpolation (so between two frames the mesh blends linearly, exactly like playing the frames);
* scene ``extras`` with ``fps``, ``frames``, ``anchor_frames``, ``anchor_labels``, ``head_name``.

Why per-frame targets rather than the expression basis as targets: the jaw (and eyes) are
*rotations* applied by skinning, which morph targets cannot express, so per-frame targets are
the general exact choice. The cost is ``T x V`` vertex deltas plus a ``T x T`` weight table, so
the exporter refuses clips over :data:`MAX_GLB_FRAMES` frames (export every n-th frame).

Coordinates: glTF is metres, +Y up, +Z towards the viewer, the same as flame_transit's head frame.

The file is built with trimesh's glTF exporter (mesh, node, scene) and its
``buffer_postprocessor`` hook, which appends the morph-target and animation data to the glTF
JSON and binary buffer before the GLB is assembled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..errors import InputError
from ..io_utils import PathLike, atomic_write_bytes
from .common import resolve_clip

__all__ = ["save_glb", "MAX_GLB_FRAMES", "ANIMATION_NAME"]

#: longest clip written as a .glb (the weight table grows as frames squared)
MAX_GLB_FRAMES = 2000
ANIMATION_NAME = "expression_transition"

_FLOAT = 5126  # glTF componentType FLOAT


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals ``(T, V, 3)`` float32 (trimesh's definition; +Z where undefined)."""
    import trimesh

    out = np.empty_like(vertices, dtype=np.float32)
    for i in range(len(vertices)):
        mesh = trimesh.Trimesh(vertices=vertices[i], faces=faces, process=False, validate=False)
        out[i] = mesh.vertex_normals
    # vertices no triangle uses (or only degenerate ones) get no normal from the faces; glTF
    # requires unit normals, so give them +Z (towards the viewer)
    length = np.linalg.norm(out, axis=2)
    bad = np.abs(length - 1.0) > 1e-3
    out[bad] = (0.0, 0.0, 1.0)
    out[~bad] /= length[~bad][:, None]
    return out


def save_glb(
    path: PathLike,
    vertices: Any = None,
    faces: Any = None,
    *,
    params: Any = None,
    head: Any = None,
    fps: Optional[float] = None,
    include_normals: bool = True,
    anchor_frames: Optional[Sequence[int]] = None,
    anchor_labels: Optional[Sequence[str]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    name: str = "head",
) -> Path:
    """Write the clip as an animated ``.glb`` (morph targets + weights animation), atomically.

    Args:
        path: target file, ``.glb``.
        vertices: ``(T, V, 3)`` meshes in metres; computed with ``head`` when omitted.
        faces: ``(F, 3)``; default ``head.faces``.
        params: optional :class:`~flame_transit.trajectory.Trajectory` / :class:`FaceParams`
            (fps, anchors and head name; meshes via ``head``).
        head: a :class:`~flame_transit.head.Head`.
        fps: frames per second of the animation (default the trajectory's, else 30).
        include_normals: store vertex normals (base and per-target deltas) for smooth shading;
            without them viewers shade flat.
        anchor_frames, anchor_labels: keyframe markers (scene extras and target names).
        metadata: extra JSON-serialisable values for the scene extras.
        name: mesh and node name.

    Returns:
        The absolute path written.
    """
    import trimesh
    from trimesh.exchange.gltf import export_glb

    if Path(os.fspath(path)).suffix.lower() != ".glb":
        raise InputError(f"save_glb writes binary glTF (.glb) files, got {os.fspath(path)!r}")
    face_params, v, f, info = resolve_clip(
        params, vertices=vertices, faces=faces, head=head, fps=fps,
        anchor_frames=anchor_frames, anchor_labels=anchor_labels,
    )
    t, nv = v.shape[:2]
    if t > MAX_GLB_FRAMES:
        raise InputError(
            f"the clip has {t} frames; .glb export keeps one morph target per frame and handles up "
            f"to {MAX_GLB_FRAMES}; export every n-th frame (vertices[::n], fps / n)"
        )
    width = max(4, len(str(t - 1)))
    label_at = dict(zip(info.anchor_frames, info.anchor_labels))
    target_names = [f"frame_{i:0{width}d}" + (f"_{label_at[i]}" if i in label_at else "") for i in range(t)]
    normals = _vertex_normals(v, f) if include_normals else None
    deltas = v - v[:1]

    extras: Dict[str, Any] = {
        "generator": "flame_transit",
        "fps": info.fps,
        "frames": t,
        "head_name": info.head_name,
        "anchor_frames": info.anchor_frames,
        "anchor_labels": info.anchor_labels,
        "morph_targets": "one per frame, relative to frame 0 (the base mesh)",
        "animation": ANIMATION_NAME,
    }
    if metadata:
        user = dict(metadata)
        clash = sorted(set(user) & set(extras))
        if clash:
            raise InputError(f"metadata keys {clash} are reserved")
        extras.update(user)

    mesh = trimesh.Trimesh(vertices=v[0], faces=f, process=False, validate=False)
    scene = trimesh.Scene()
    scene.add_geometry(mesh, geom_name=name, node_name=name)
    try:
        json.dumps(extras)
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata must be JSON-serialisable: {exc}") from exc
    scene.metadata.update(extras)

    def add_accessor(buffer_items: Any, tree: Dict[str, Any], data: np.ndarray, kind: str, bounds: bool) -> int:
        data = np.ascontiguousarray(data, dtype=np.float32)
        buf_key = f"flame_transit_buffer_{len(buffer_items)}"
        buffer_items[buf_key] = data.tobytes()  # float32: always a multiple of 4 bytes
        rows = data.reshape(-1, 3) if kind == "VEC3" else data.reshape(-1, 1)
        blob: Dict[str, Any] = {
            "bufferView": len(buffer_items) - 1,
            "componentType": _FLOAT,
            "count": int(rows.shape[0]),
            "type": kind,
        }
        if bounds:
            blob["min"] = rows.min(axis=0).tolist()
            blob["max"] = rows.max(axis=0).tolist()
        accessors = tree["accessors"]
        accessors[f"flame_transit_accessor_{len(accessors)}"] = blob
        return len(accessors) - 1

    def add_animation(buffer_items: Any, tree: Dict[str, Any]) -> None:
        meshes = tree.get("meshes", [])
        if len(meshes) != 1 or len(meshes[0]["primitives"]) != 1:
            raise InputError("internal: expected one mesh with one primitive in the glTF tree")
        gmesh = meshes[0]
        prim = gmesh["primitives"][0]
        if normals is not None:
            prim["attributes"]["NORMAL"] = add_accessor(buffer_items, tree, normals[0], "VEC3", False)
        targets: List[Dict[str, int]] = []
        for i in range(t):
            target = {"POSITION": add_accessor(buffer_items, tree, deltas[i], "VEC3", True)}
            if normals is not None:
                target["NORMAL"] = add_accessor(buffer_items, tree, normals[i] - normals[0], "VEC3", False)
            targets.append(target)
        prim["targets"] = targets
        gmesh["weights"] = [0.0] * t
        gmesh.setdefault("extras", {})["targetNames"] = target_names
        node = next((k for k, n in enumerate(tree.get("nodes", [])) if n.get("mesh") == 0), None)
        if node is None:
            raise InputError("internal: the glTF tree has no node for the mesh")
        times = np.arange(t, dtype=np.float32) / np.float32(info.fps)
        weights = np.eye(t, dtype=np.float32).reshape(-1)
        sampler = {
            "input": add_accessor(buffer_items, tree, times, "SCALAR", True),
            "output": add_accessor(buffer_items, tree, weights, "SCALAR", False),
            "interpolation": "LINEAR",
        }
        tree["animations"] = [
            {"name": ANIMATION_NAME, "channels": [{"sampler": 0, "target": {"node": node, "path": "weights"}}], "samplers": [sampler]}
        ]

    def mark_buffer_view_targets(tree: Dict[str, Any]) -> None:
        # vertex data -> ARRAY_BUFFER, indices -> ELEMENT_ARRAY_BUFFER (a hint for loaders)
        accessors, views = tree.get("accessors", []), tree.get("bufferViews", [])
        animation = {acc for a in tree.get("animations", []) for smp in a["samplers"] for acc in (smp["input"], smp["output"])}
        shared = {accessors[i]["bufferView"] for i in animation}
        for gmesh in tree.get("meshes", []):
            for prim in gmesh["primitives"]:
                uses = [(i, 34962) for i in prim["attributes"].values()]
                uses += [(i, 34962) for tgt in prim.get("targets", []) for i in tgt.values()]
                if "indices" in prim:
                    uses.append((prim["indices"], 34963))
                for index, target in uses:
                    view = accessors[index].get("bufferView")
                    if view is not None and view not in shared:
                        views[view]["target"] = target

    data = export_glb(scene, include_normals=False, buffer_postprocessor=add_animation,
                      tree_postprocessor=mark_buffer_view_targets)
    return atomic_write_bytes(path, data)
