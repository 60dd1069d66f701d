"""``.glb`` export: the head with named expression shapes as morph targets, and their animation.

What the file holds (glTF 2.0, binary):

* one mesh (one triangle primitive, the whole head: skin, eyes, mouth interior) whose base
  ``POSITION`` (and ``NORMAL``) is the subject at rest: identity, per-subject offsets and the
  clip's head/neck/eye pose, expression zero, jaw closed;
* **named morph targets** (at most :data:`MAX_MORPH_TARGETS`), names in
  ``mesh.extras.targetNames`` (Blender's shape-key names), ``POSITION`` (and ``NORMAL``) deltas:

  - ``targets="au"`` (default when the clip has an AU trajectory, :mod:`flame_transit.arkit`):
    one target per action unit, ``"AU1"`` ... ``"AU43"``, plus ``"AU26"`` = the jaw opening as a
    shape; each target is the head at that AU = its ``target_units`` entry (the top of the AU
    range, 3.0, or the clip's largest AU when above; an AU that turns the jaw, AU26, at the
    clip's widest turn, so the jaw is exact there), and the weights ``AU / unit`` stay in
    ``[0, 1]`` (Blender clamps shape keys there). On the open head the targets are its AU fields
    and jaw; on another head with an AU trajectory (FLAME) the AU -> expression and AU -> jaw
    maps are fitted to the clip by least squares (exact for a linear map);
  - ``targets="arkit"`` (AU heads: the open head): ARKit's 52 shapes, named in Apple's order and
    made as for the bundled ARKit head (:func:`flame_transit.arkit.arkit_shapes`) on the
    subject, weights = the clip's ARKit curves; the curves cover the AUs only approximately (a
    few millimetres, recorded in ``max_vertex_error_m``);
  - ``targets="keyframes"`` (the fallback for clips without AUs): one target per keyframe of the
    trajectory (``"disgust"``, ``"neutral"``, ``"happiness"``), weights = the trajectory's
    blend between consecutive keyframes;
* one animation ``"expression_transition"`` with **one channel** on the mesh node's ``weights``:
  T keyframes at ``t_i = i / fps`` seconds, LINEAR interpolation;
* scene ``extras``: ``fps``, ``frames``, ``anchor_frames``, ``anchor_labels``, ``head_name``,
  ``targets``, ``target_units`` and ``max_vertex_error_m`` -- the largest distance over the clip
  between the file's morphed mesh and the head's exact mesh (the jaw is a rotation that a
  shape follows only along a chord, skinning turns the lower face's expression with the jaw,
  the generated jaws carry a little sideways turn, and the jaw's pose correctives are nonlinear
  in its angle: over 34 open-head clips at most 2.8 mm, at the lower lip of an opening jaw, and
  0.20 mm averaged over vertices and frames; docs/ARKIT.md).

Coordinates: glTF is metres, +Y up, +Z towards the viewer, the same as flame_transit's head frame.

The file is built with trimesh's glTF exporter (mesh, node, scene) and its
``buffer_postprocessor`` hook, which appends the morph-target and animation data to the glTF
JSON and binary buffer before the GLB is assembled (:func:`write_morph_glb`, shared with the
ARKit avatar of ``tools/build_arkit_avatar.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..checks import MAX_MORPH_TARGETS
from ..errors import InputError
from ..io_utils import PathLike, atomic_write_bytes
from .common import as_faces, as_vertices, compute_vertices, resolve_fps

__all__ = ["save_glb", "write_morph_glb", "morph_targets", "MAX_MORPH_TARGETS", "ANIMATION_NAME", "TARGET_KINDS"]

ANIMATION_NAME = "expression_transition"
#: what the morph targets can be (see the module docstring)
TARGET_KINDS = ("auto", "au", "arkit", "keyframes")

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


def _unique(names: Sequence[str]) -> List[str]:
    seen: Dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def morph_targets(trajectory: Any, head: Any, targets: str = "auto") -> Tuple[np.ndarray, np.ndarray, List[str], np.ndarray, str, List[float]]:
    """The named shapes of a clip and their weights over time.

    Returns:
        ``(base (V, 3), deltas (N, V, 3), names [N], weights (T, N), kind, units [N])``: frame ``t``
        is approximately ``base + weights[t] @ deltas``; ``kind`` is ``"au"``,
        ``"arkit"`` or ``"keyframes"``, ``units`` the AU value each target's weight 1 stands for (AU targets).
    """
    from ..arkit import au_trajectory
    from ..head.open_head import JAW_RAD_PER_AU26
    from ..transit.anchors import AU_RANGE

    if targets not in TARGET_KINDS:
        raise InputError(f"targets must be one of {TARGET_KINDS}, got {targets!r}")
    fp = trajectory.params
    expr = fp.expression.detach().reshape(-1, fp.expression.shape[-1]).to(torch.float64)
    pose = fp.pose.detach().reshape(-1, 15)
    e = expr.shape[1]
    au = names = None
    if targets == "arkit":
        from ..arkit import ARKIT_NAMES, au_to_arkit, arkit_shapes

        base, deltas = arkit_shapes(head, shape=fp.shape, offsets=fp.offsets, pose=pose[0])
        weights = au_to_arkit(*au_trajectory(trajectory, head))
        return base, deltas, list(ARKIT_NAMES), weights, "arkit", [1.0] * len(ARKIT_NAMES)
    if targets in ("auto", "au"):
        try:
            au, names = au_trajectory(trajectory, head)
        except InputError:
            if targets == "au":
                raise
    if au is not None and names is not None:
        a = torch.as_tensor(au, dtype=torch.float64)
        jaw = pose[:, 6:9].to(torch.float64)
        head_names = [str(n) for n in getattr(head, "expression_names", ())]
        if list(names) == head_names + ["AU26"]:  # the head's expression coordinates are these AUs
            basis = torch.cat([torch.eye(e, dtype=torch.float64), torch.zeros(1, e, dtype=torch.float64)])
            jaw_basis = torch.zeros(len(names), 3, dtype=torch.float64)
            jaw_basis[-1, 0] = JAW_RAD_PER_AU26
            offset = torch.zeros(e, dtype=torch.float64)
            jaw_offset = torch.cat([torch.zeros(1, dtype=torch.float64), jaw[:, 1:].mean(0)])  # the little sideways turn
        else:  # fit expression and jaw = offset + au @ basis on the clip (exact for a linear AU map)
            design = torch.cat([torch.ones(len(a), 1, dtype=torch.float64), a], 1)
            sol = torch.linalg.lstsq(design, torch.cat([expr, jaw], 1), driver="gelsd").solution
            offset, basis, jaw_offset, jaw_basis = sol[0, :e], sol[1:, :e], sol[0, e:], sol[1:, e:]
        # weight 1 = the top of the AU range (viewers such as Blender clamp shape keys to [0, 1]);
        # an AU that turns the jaw is a shape at the clip's widest turn: a chord of the rotation, exact there
        turns = jaw_basis.abs().amax(1) > 1e-9
        peak = a.clamp_min(0).amax(0)
        full = max(float(AU_RANGE[1]), float(np.ceil(float(peak.max()) * 10) / 10))
        units = torch.where(turns, peak.clamp_min(0.1), torch.full_like(peak, full))
        exprs = torch.cat([offset[None], offset[None] + units[:, None] * basis], 0)
        jaws = torch.cat([jaw_offset[None], jaw_offset[None] + units[:, None] * jaw_basis], 0)
        rows = pose[:1].repeat(len(exprs), 1).clone()
        rows[:, 6:9] = jaws.to(rows.dtype)
        v = compute_vertices(head, fp.replace(expression=exprs.to(fp.expression.dtype), pose=rows))
        weights = (a / units).clamp_min(0.0).numpy()
        return v[0], v[1:] - v[:1], list(names), weights.astype(np.float32), "au", units.tolist()
    # keyframes: frame t = (1 - w) K[s - 1] + w K[s] (the trajectory's own blend)
    segment = getattr(trajectory, "segment", None)
    if segment is None:
        raise InputError("a .glb of a clip without action units needs its Trajectory (keyframes and blends)")
    kf = [int(i) for i in trajectory.anchor_frames]
    still = pose[:1].clone()
    still[:, 6:9] = 0.0  # the base: frame 0's head, neck and eyes, no expression, jaw closed
    base = compute_vertices(head, fp.replace(expression=torch.zeros(1, e, dtype=fp.expression.dtype), pose=still))[0]
    v = compute_vertices(head, fp.replace(expression=fp.expression.reshape(-1, e)[kf], pose=pose[kf]))
    t = expr.shape[0]
    w = np.zeros((t, len(kf)), np.float64)
    seg = np.asarray(segment, dtype=np.int64)
    blend = np.asarray(trajectory.blend, dtype=np.float64)
    rows = np.arange(t)
    w[rows, seg] += blend
    w[rows, np.maximum(seg - 1, 0)] += 1.0 - blend
    return base, v - base[None], _unique(list(trajectory.labels)), w.astype(np.float32), "keyframes", [1.0] * len(kf)


def write_morph_glb(
    path: PathLike,
    base: np.ndarray,
    faces: np.ndarray,
    deltas: np.ndarray,
    target_names: Sequence[str],
    *,
    weights: Optional[np.ndarray] = None,
    fps: float = 30.0,
    include_normals: bool = True,
    extras: Optional[Mapping[str, Any]] = None,
    name: str = "head",
    sparse_tolerance: float = 1e-7,
) -> Path:
    """Write one mesh with named morph targets and (optionally) one ``weights`` animation.

    Args:
        path: target ``.glb``.
        base: ``(V, 3)`` base positions, metres.
        faces: ``(F, 3)`` triangles.
        deltas: ``(N, V, 3)`` morph-target position deltas, ``N <= MAX_MORPH_TARGETS``.
        target_names: N names (``mesh.extras.targetNames``).
        weights: ``(T, N)`` weights over time (an animation at ``fps``), or None (no animation).
        fps: frames per second of the animation.
        include_normals: store vertex normals (base and per-target deltas).
        extras: JSON-serialisable scene extras.
        name: mesh and node name.
        sparse_tolerance: a target's vertices that move less than this (metres, per axis) are
            left out: targets that move few vertices are stored as sparse accessors.
    """
    import trimesh
    from trimesh.exchange.gltf import export_glb

    if Path(os.fspath(path)).suffix.lower() != ".glb":
        raise InputError(f"writes binary glTF (.glb) files, got {os.fspath(path)!r}")
    base = as_vertices(base, "base")[0]
    f = as_faces(faces, base.shape[0])
    deltas = np.asarray(deltas, dtype=np.float32).reshape(-1, base.shape[0], 3)
    n = len(deltas)
    if not 1 <= n <= MAX_MORPH_TARGETS or len(target_names) != n:
        raise InputError(f"a .glb holds 1..{MAX_MORPH_TARGETS} named morph targets, got {n} targets and {len(target_names)} names")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float32).reshape(-1, n)
        if not np.isfinite(weights).all():
            raise InputError("morph-target weights contain NaN or infinite values")
    normals = _vertex_normals(np.concatenate([base[None], base[None] + deltas]), f) if include_normals else None
    scene_extras = dict(extras or {})
    try:
        json.dumps(scene_extras)
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata must be JSON-serialisable: {exc}") from exc

    mesh = trimesh.Trimesh(vertices=base, faces=f, process=False, validate=False)
    scene = trimesh.Scene()
    scene.add_geometry(mesh, geom_name=name, node_name=name)
    scene.metadata.update(scene_extras)

    def add_accessor(buffer_items: Any, tree: Dict[str, Any], data: np.ndarray, kind: str, bounds: bool) -> int:
        data = np.ascontiguousarray(data, dtype=np.float32)
        buf_key = f"flame_transit_buffer_{len(buffer_items)}"
        buffer_items[buf_key] = data.tobytes()  # float32: always a multiple of 4 bytes
        rows = data.reshape(-1, 3) if kind == "VEC3" else data.reshape(-1, 1)
        blob: Dict[str, Any] = {"bufferView": len(buffer_items) - 1, "componentType": _FLOAT,
                                "count": int(rows.shape[0]), "type": kind}
        if bounds:
            blob["min"] = rows.min(axis=0).tolist()
            blob["max"] = rows.max(axis=0).tolist()
        accessors = tree["accessors"]
        accessors[f"flame_transit_accessor_{len(accessors)}"] = blob
        return len(accessors) - 1

    def add_sparse_vec3(buffer_items: Any, tree: Dict[str, Any], data: np.ndarray) -> int:
        """A morph-target POSITION accessor: sparse when most vertices do not move (an AU moves
        one region), no data at all when none does."""
        moving = np.nonzero(np.abs(data).max(axis=1) > sparse_tolerance)[0]
        if len(moving) > 0.6 * len(data):
            return add_accessor(buffer_items, tree, data, "VEC3", True)
        data = np.where(np.abs(data).max(axis=1, keepdims=True) > sparse_tolerance, data, 0.0)
        blob: Dict[str, Any] = {"componentType": _FLOAT, "count": int(len(data)), "type": "VEC3",
                                "min": data.min(axis=0).tolist(), "max": data.max(axis=0).tolist()}
        if len(moving):
            buffer_items[f"flame_transit_buffer_{len(buffer_items)}"] = moving.astype(np.uint32).tobytes()
            indices = len(buffer_items) - 1
            buffer_items[f"flame_transit_buffer_{len(buffer_items)}"] = np.ascontiguousarray(data[moving], np.float32).tobytes()
            blob["sparse"] = {"count": int(len(moving)), "indices": {"bufferView": indices, "componentType": 5125},
                              "values": {"bufferView": len(buffer_items) - 1}}
        accessors = tree["accessors"]
        accessors[f"flame_transit_accessor_{len(accessors)}"] = blob
        return len(accessors) - 1

    def add_targets(buffer_items: Any, tree: Dict[str, Any]) -> None:
        meshes = tree.get("meshes", [])
        if len(meshes) != 1 or len(meshes[0]["primitives"]) != 1:
            raise InputError("internal: expected one mesh with one primitive in the glTF tree")
        gmesh = meshes[0]
        prim = gmesh["primitives"][0]
        if normals is not None:
            prim["attributes"]["NORMAL"] = add_accessor(buffer_items, tree, normals[0], "VEC3", False)
        targets: List[Dict[str, int]] = []
        for i in range(n):
            target = {"POSITION": add_sparse_vec3(buffer_items, tree, deltas[i])}
            if normals is not None:
                target["NORMAL"] = add_accessor(buffer_items, tree, normals[i + 1] - normals[0], "VEC3", False)
            targets.append(target)
        prim["targets"] = targets
        gmesh["weights"] = [0.0] * n
        gmesh.setdefault("extras", {})["targetNames"] = list(target_names)
        if weights is None:
            return
        node = next((k for k, nd in enumerate(tree.get("nodes", [])) if nd.get("mesh") == 0), None)
        if node is None:
            raise InputError("internal: the glTF tree has no node for the mesh")
        times = np.arange(len(weights), dtype=np.float32) / np.float32(fps)
        sampler = {
            "input": add_accessor(buffer_items, tree, times, "SCALAR", True),
            "output": add_accessor(buffer_items, tree, weights.reshape(-1), "SCALAR", False),
            "interpolation": "LINEAR",
        }
        tree["animations"] = [{"name": ANIMATION_NAME, "samplers": [sampler],
                               "channels": [{"sampler": 0, "target": {"node": node, "path": "weights"}}]}]

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

    data = export_glb(scene, include_normals=False, buffer_postprocessor=add_targets,
                      tree_postprocessor=mark_buffer_view_targets)
    return atomic_write_bytes(path, data)


def save_glb(
    path: PathLike,
    params: Any = None,
    *,
    head: Any = None,
    fps: Optional[float] = None,
    targets: str = "auto",
    faces: Any = None,
    include_normals: bool = True,
    metadata: Optional[Mapping[str, Any]] = None,
    name: str = "head",
    vertices: Any = None,
) -> Path:
    """Write the clip as a ``.glb``: named expression morph targets + one weights animation.

    Args:
        path: target file, ``.glb``.
        params: the clip's :class:`~flame_transit.trajectory.Trajectory`.
        head: its :class:`~flame_transit.head.Head` (the targets are computed with it).
        fps: frames per second of the animation (default the trajectory's).
        targets: ``"auto"`` (AUs when the clip has them, else keyframes), ``"au"``, ``"arkit"``
            or ``"keyframes"`` (module docstring).
        faces: ``(F, 3)`` triangles (default the whole head, ``head.mesh_faces``).
        include_normals: store vertex normals (base and per-target deltas) for smooth shading.
        metadata: extra JSON-serialisable values for the scene extras.
        name: mesh and node name.
        vertices: not used (the shapes are computed with ``head``); accepted so that every
            exporter takes the same clip arguments.

    Returns:
        The absolute path written.

    Raises:
        InputError: no trajectory or head, a wrong suffix, more than 64 targets, reserved or
            non-JSON metadata.
    """
    from ..trajectory import Trajectory

    if Path(os.fspath(path)).suffix.lower() != ".glb":
        raise InputError(f"save_glb writes binary glTF (.glb) files, got {os.fspath(path)!r}")
    if not isinstance(params, Trajectory) or head is None:
        raise InputError("save_glb needs the clip's Trajectory (params=) and its head (head=) to build the "
                         "expression shapes")
    rate = resolve_fps(params, fps)
    base, deltas, names, weights, kind, units = morph_targets(params, head, targets)
    if len(names) > MAX_MORPH_TARGETS:
        raise InputError(f"the clip has {len(names)} keyframes; a .glb holds at most {MAX_MORPH_TARGETS} "
                         "morph targets: split the clip")
    f = head.mesh_faces if faces is None else faces
    exact = compute_vertices(head, params.params)
    error = float(np.linalg.norm(base[None] + np.einsum("tn,nvc->tvc", weights, deltas) - exact, axis=2).max())
    extras: Dict[str, Any] = {
        "generator": "flame_transit",
        "fps": rate,
        "frames": int(len(weights)),
        "head_name": str(params.params.head_name or getattr(head, "name", "")),
        "anchor_frames": [int(x) for x in params.anchor_frames],
        "anchor_labels": [str(x) for x in params.labels],
        "targets": kind,
        "target_units": units,
        "max_vertex_error_m": round(error, 7),
        "animation": ANIMATION_NAME,
    }
    if metadata:
        user = dict(metadata)
        clash = sorted(set(user) & set(extras))
        if clash:
            raise InputError(f"metadata keys {clash} are reserved")
        extras.update(user)
    return write_morph_glb(path, base, f, deltas, names, weights=weights, fps=rate,
                           include_normals=include_normals, extras=extras, name=name)
