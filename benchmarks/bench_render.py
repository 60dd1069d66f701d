#!/usr/bin/env python
"""Renderer throughput: 60 frames at 512x512, our ``gl`` backend vs pyrender (if installed).

Meshes: the bundled open head (skin + eyes + mouth interior, shaded and photo looks) and a
5023-vertex / ~10k-triangle closed mesh (FLAME's size). Each frame has new vertex positions
(an animation), and the frame is read back to host memory as ``uint8`` in both renderers.
pyrender gets the same mesh per frame through ``pyrender.Mesh.from_trimesh`` (its usual path
for changing geometry) on an orthographic camera with a directional light.

Usage::

    PYOPENGL_PLATFORM=egl python benchmarks/bench_render.py [--frames 60] [--repeats 5]

Prints the median seconds per clip, frames per second and the speed ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def flame_sized_mesh(frames: int):
    """A wobbling head-sized ellipsoid with exactly 5023 vertices (FLAME's count): one pole and
    62 rings of 81, open at the bottom like a neck; 9963 triangles (FLAME: 9976)."""
    rings, cols = 62, 81
    th = np.linspace(0, np.pi * 0.92, rings + 1)[1:]  # from the top pole down, open below
    ph = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    tt, pp = np.meshgrid(th, ph, indexing="ij")
    grid = np.stack([np.sin(tt) * np.sin(pp), np.cos(tt), np.sin(tt) * np.cos(pp)], -1).reshape(-1, 3)
    v = np.concatenate([[[0.0, 1.0, 0.0]], grid]) * np.array([0.075, 0.1, 0.09])
    faces = []
    for c in range(cols):  # cap
        faces.append((0, 1 + c, 1 + (c + 1) % cols))
    for r in range(rings - 1):
        for c in range(cols):
            a, b = 1 + r * cols + c, 1 + r * cols + (c + 1) % cols
            faces += [(a, a + cols, b), (b, a + cols, b + cols)]
    f = np.asarray(faces, dtype=np.int64)
    t = np.linspace(0, 2 * np.pi, frames, endpoint=False)
    wobble = 1 + 0.05 * np.sin(t[:, None] + 60 * v[None, :, 1])
    return (v[None] * wobble[..., None]).astype(np.float32), f


def open_head_clip(frames: int):
    import torch

    from flame_transit.head import load_head

    head = load_head()
    names = list(head.expression_names)
    e = torch.zeros(frames, head.num_expression)
    w = torch.sin(torch.linspace(0, np.pi, frames))
    for au in ("AU6", "AU12", "AU25"):
        e[:, names.index(au)] = w
    pose = torch.zeros(frames, 15)
    pose[:, 6] = 0.2 * w
    with torch.no_grad():
        v = head(expression=e, pose=pose).vertices.numpy()
    return head, v


def time_it(fn, repeats: int) -> float:
    fn()  # warm-up (context, shaders, first upload)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_ours(verts, faces, repeats, **kw):
    from flame_transit.render import get_renderer

    r = get_renderer("gl")

    def run():
        n = 0
        for frame in r.iter_frames(verts, faces, **kw):
            n += frame.shape[0] > 0
        assert n == len(verts)

    sec = time_it(run, repeats)
    return sec, r.device_info


def bench_pyrender(verts, faces, repeats):
    try:
        import pyrender
        import trimesh
    except ImportError:
        return None
    r = pyrender.OffscreenRenderer(512, 512)
    scene = pyrender.Scene(bg_color=[0.94, 0.94, 0.95, 1.0], ambient_light=[0.35, 0.35, 0.35])
    lo, hi = verts.reshape(-1, 3).min(0), verts.reshape(-1, 3).max(0)
    c = (lo + hi) / 2
    mag = float(max(hi[0] - lo[0], hi[1] - lo[1])) / 1.6
    pose = np.eye(4)
    pose[:3, 3] = [c[0], c[1], hi[2] + 1.0]
    scene.add(pyrender.OrthographicCamera(xmag=mag, ymag=mag, znear=0.01, zfar=10.0), pose=pose)
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=pose)
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[0.8, 0.64, 0.55, 1.0], roughnessFactor=0.8)

    def run():
        node = None
        for v in verts:
            mesh = pyrender.Mesh.from_trimesh(trimesh.Trimesh(v, faces, process=False), material=material, smooth=True)
            if node is not None:
                scene.remove_node(node)
            node = scene.add(mesh)
            color, _ = r.render(scene)
            assert color.shape == (512, 512, 3)
        scene.remove_node(node)

    sec = time_it(run, repeats)
    r.delete()
    return sec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n = args.frames

    head, head_v = open_head_clip(n)
    flame_v, flame_f = flame_sized_mesh(n)
    photo_args = None
    try:
        import skimage.data

        from flame_transit.encode import encode

        img = skimage.data.astronaut()
        p = encode(img, head)
        import torch

        with torch.no_grad():
            names = list(head.expression_names)
            e = p.expression.repeat(n, 1)
            w = torch.sin(torch.linspace(0, np.pi, n))
            e[:, names.index("AU12")] = 1.5 * (1 - w)
            e[:, names.index("AU25")] = w
            pose = p.pose.repeat(n, 1)
            pose[:, 6] = 0.25 * w
            pv = head(shape=p.shape, expression=e, pose=pose, offsets=p.offsets).vertices.numpy()
        photo_args = (pv, dict(params=p, look="photo", photo=img, head=head))
    except Exception as exc:  # encoder unavailable: skip the photo row
        print(f"(photo look skipped: {exc})")

    rows = []
    sec, dev = bench_ours(head_v, head.faces, args.repeats, look="shaded", size=512, head=head)
    rows.append(("open head shaded", len(head_v[0]), len(head.faces), sec, bench_pyrender(head_v, head.faces, args.repeats)))
    if photo_args is not None:
        pv, kw = photo_args
        params = kw.pop("params")
        sec_p, _ = bench_ours(pv, head.faces, args.repeats, params=params, **kw)
        rows.append(("open head photo 512", len(pv[0]), len(head.faces), sec_p, None))
    sec, _ = bench_ours(flame_v, flame_f, args.repeats, look="shaded", size=512)
    rows.append(("5023-vertex mesh shaded", len(flame_v[0]), len(flame_f), sec, bench_pyrender(flame_v, flame_f, args.repeats)))

    print(f"renderer: {dev}; {n} frames at 512x512, median of {args.repeats}")
    print(f"{'mesh':26s} {'V':>6s} {'F':>6s} {'ours s':>8s} {'ours fps':>9s} {'pyrender s':>11s} {'pyr fps':>8s} {'speed-up':>8s}")
    for name, v, f, ours, pyr in rows:
        pyr_s = f"{pyr:11.3f}" if pyr else f"{'-':>11s}"
        pyr_fps = f"{n / pyr:8.1f}" if pyr else f"{'-':>8s}"
        ratio = f"{pyr / ours:7.2f}x" if pyr else f"{'-':>8s}"
        print(f"{name:26s} {v:6d} {f:6d} {ours:8.3f} {n / ours:9.1f} {pyr_s} {pyr_fps} {ratio}")


if __name__ == "__main__":
    main()
