#!/usr/bin/env python
"""Render ``docs/gallery.png``: the open head's action units and emotion prototypes.

Top: neutral and the EMFACS prototypes (frontal and 3/4 view). Below: every action unit at
1.0 (and AU26 through the jaw), frontal, shaded, with the displacement magnitude as a heat tint.

Uses its own small renderer (moderngl offscreen on EGL, falling back to a matplotlib painter's
algorithm), so it does not depend on the package's renderers.

Usage::

    python tools/make_gallery.py [--out docs/gallery.png] [--size 256]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SKIN = np.array([0.86, 0.70, 0.60])
MOUTH = np.array([0.22, 0.05, 0.06])
SCLERA = np.array([0.93, 0.92, 0.90])
IRIS = np.array([0.25, 0.17, 0.10])
LIPS = np.array([0.72, 0.40, 0.40])
BROW = np.array([0.36, 0.26, 0.18])


def rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def subdivide(v: np.ndarray, f: np.ndarray, vattr: np.ndarray, fattr: np.ndarray):
    """One midpoint subdivision step: vertices, faces, per-vertex and per-face attributes."""
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    uniq, inv = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True)
    n = len(v)
    m = inv.reshape(3, -1).T + n  # (F, 3): midpoints of edges 01, 12, 20
    a, b, c = f[:, 0], f[:, 1], f[:, 2]
    nf = np.concatenate([
        np.stack([a, m[:, 0], m[:, 2]], 1), np.stack([m[:, 0], b, m[:, 1]], 1),
        np.stack([m[:, 2], m[:, 1], c], 1), np.stack([m[:, 0], m[:, 1], m[:, 2]], 1),
    ])
    nv = np.concatenate([v, 0.5 * (v[uniq[:, 0]] + v[uniq[:, 1]])])
    na = np.concatenate([vattr, 0.5 * (vattr[uniq[:, 0]] + vattr[uniq[:, 1]])])
    return nv, nf, na, np.tile(fattr, (4,) + (1,) * (fattr.ndim - 1))


class Renderer:
    """Orthographic Lambert renderer (moderngl/EGL, or matplotlib when GL is unavailable)."""

    def __init__(self, size: int = 256):
        self.size = size
        self.ctx = None
        try:
            import moderngl

            self.ctx = moderngl.create_standalone_context(backend="egl")
            self.prog = self.ctx.program(
                vertex_shader="""
                    #version 330
                    in vec3 in_pos; in vec3 in_nrm; in vec3 in_col;
                    uniform vec4 view;  // cx, cy, scale, zscale
                    out vec3 n; out vec3 col;
                    void main() {
                        gl_Position = vec4((in_pos.x - view.x) * view.z, (in_pos.y - view.y) * view.z,
                                           -in_pos.z * view.w, 1.0);
                        n = in_nrm; col = in_col;
                    }""",
                fragment_shader="""
                    #version 330
                    in vec3 n; in vec3 col; out vec4 frag;
                    void main() {
                        vec3 nn = normalize(n);
                        if (!gl_FrontFacing) nn = -nn;
                        vec3 l1 = normalize(vec3(0.35, 0.45, 1.0));
                        vec3 l2 = normalize(vec3(-0.6, 0.1, 0.5));
                        float d = 0.22 + 0.68 * max(dot(nn, l1), 0.0) + 0.18 * max(dot(nn, l2), 0.0);
                        vec3 h = normalize(l1 + vec3(0, 0, 1));
                        float s = 0.08 * pow(max(dot(nn, h), 0.0), 24.0);
                        frag = vec4(col * d + s, 1.0);
                    }""",
            )
            self.fbo = self.ctx.simple_framebuffer((size, size), components=4)
            self.fbo.use()
            self.ctx.enable(moderngl.DEPTH_TEST)
        except Exception as exc:  # no GL: matplotlib fallback
            print(f"moderngl unavailable ({exc}); using matplotlib", file=sys.stderr)
            self.ctx = None

    def render(self, meshes: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray, bool]],
               view: Tuple[float, float, float]) -> np.ndarray:
        """meshes: (vertices (V,3), faces (F,3), colors (V,3), smooth); view: centre x, y, half-size."""
        cx, cy, half = view
        if self.ctx is None:
            return self._render_mpl(meshes, view)
        self.fbo.clear(1.0, 1.0, 1.0, 1.0, depth=1.0)
        self.prog["view"].value = (cx, cy, 1.0 / half, 2.0)
        for v, f, col, smooth in meshes:
            corner = col.reshape(-1, 3) if col.ndim == 3 else col[f].reshape(-1, 3)
            if smooth:
                n = vertex_normals(v, f)
                data = np.concatenate([v[f].reshape(-1, 3), n[f].reshape(-1, 3), corner], 1)
            else:
                fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
                fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-12)
                data = np.concatenate([v[f].reshape(-1, 3), np.repeat(fn, 3, 0), corner], 1)
            vbo = self.ctx.buffer(data.astype("f4").tobytes())
            vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f 3f", "in_pos", "in_nrm", "in_col")])
            vao.render()
            vao.release()
            vbo.release()
        img = np.frombuffer(self.fbo.read(components=3), dtype=np.uint8).reshape(self.size, self.size, 3)
        return img[::-1].copy()

    def _render_mpl(self, meshes, view) -> np.ndarray:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.collections import PolyCollection

        cx, cy, half = view
        fig = plt.figure(figsize=(self.size / 100, self.size / 100), dpi=100)
        ax = fig.add_axes([0, 0, 1, 1])
        polys, cols, depth = [], [], []
        light = np.array([0.35, 0.45, 1.0]) / np.linalg.norm([0.35, 0.45, 1.0])
        for v, f, col, _ in meshes:
            fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
            fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-12)
            shade = 0.25 + 0.75 * np.abs(fn @ light)
            polys += list(v[f][:, :, :2])
            fc = col.mean(1) if col.ndim == 3 else col[f].mean(1)
            cols += list(np.clip(fc * shade[:, None], 0, 1))
            depth += list(v[f][:, :, 2].mean(1))
        order = np.argsort(depth)
        ax.add_collection(PolyCollection([polys[i] for i in order], facecolors=[cols[i] for i in order],
                                         edgecolors="none"))
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy - half, cy + half)
        ax.axis("off")
        fig.canvas.draw()
        img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
        return img


def heat(mag: np.ndarray, vmax: float) -> Tuple[np.ndarray, np.ndarray]:
    """Heat colour (V, 3) and its blend weight (V, 1) for displacement magnitudes."""
    import matplotlib

    t = np.clip(mag / vmax, 0, 1)
    c = matplotlib.colormaps["inferno"](0.15 + 0.8 * t)[:, :3]
    return c, np.clip(t * 1.6, 0, 0.85)[:, None]


def head_meshes(head, verts: np.ndarray, rot: np.ndarray, tint: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                subdiv: bool = True):
    """Meshes for :meth:`Renderer.render`: skin (lips and brows coloured), cavity, eyes."""
    v = verts @ rot.T
    f = head.faces
    parts = head.assets.face_parts
    # per-face base colour
    fcol = np.tile(SKIN, (len(f), 1))
    key = {tuple(sorted(t)): k for k, t in enumerate(f.tolist())}
    for name, colour, alpha in (("lips", LIPS, 0.8), ("brow_left", BROW, 0.75), ("brow_right", BROW, 0.75)):
        for t in parts.get(name, np.zeros((0, 3), int)).tolist():
            k = key.get(tuple(sorted(t)))
            if k is not None:
                fcol[k] = SKIN * (1 - alpha) + colour * alpha
    hc, ha = tint if tint is not None else (np.zeros_like(v), np.zeros((len(v), 1)))
    vattr = np.concatenate([hc, ha], 1)
    vs, fs_, va, fc = v, f, vattr, fcol
    if subdiv:
        vs, fs_, va, fc = subdivide(v, f, vattr, fcol)
    corner = fc[:, None, :] * (1 - va[fs_][:, :, 3:]) + va[fs_][:, :, :3] * va[fs_][:, :, 3:]
    meshes = [(vs, fs_, corner, True)]
    if "mouth_interior" in parts:
        meshes.append((v, parts["mouth_interior"], np.tile(MOUTH, (len(v), 1)), False))
    for side in ("left", "right"):
        if f"eye_{side}" in parts:
            meshes.append((v, parts[f"eye_{side}"], np.tile(SCLERA, (len(v), 1)), False))
        if f"iris_{side}" in parts:
            vv = v + np.array([0, 0, 0.0003]) @ rot.T
            meshes.append((vv, parts[f"iris_{side}"], np.tile(IRIS, (len(v), 1)), False))
    return meshes


def label(img: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    d.text((6, 4), text, fill=(0, 0, 0))
    return np.asarray(im)


def main(argv: Optional[Sequence[str]] = None) -> int:
    import torch

    from flame_transit.head import load_head
    from flame_transit.head.open_head import EMOTION_PROTOTYPES, JAW_RAD_PER_AU26, prototype_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery.png")
    ap.add_argument("--size", type=int, default=240)
    ap.add_argument("--only", default=None, help="comma-separated emotion/AU names (debugging)")
    args = ap.parse_args(argv)

    head = load_head()
    rend = Renderer(args.size)
    e_dim = head.num_expression

    def pose_for(jaw: np.ndarray) -> torch.Tensor:
        p = torch.zeros(15)
        p[6:9] = torch.as_tensor(jaw)
        return p

    def verts(expr: np.ndarray, jaw: np.ndarray) -> np.ndarray:
        out = head(expression=torch.as_tensor(expr)[None], pose=pose_for(jaw)[None])
        return out.vertices[0].numpy().astype(np.float64)

    v0 = verts(np.zeros(e_dim), np.zeros(3))
    cy = 0.5 * (v0[10, 1] + v0[152, 1]) - 0.004
    front = (0.0, cy, 0.094)
    only = set(args.only.split(",")) if args.only else None

    rows: List[np.ndarray] = []
    # emotion rows: frontal + 3/4
    emo_imgs_f, emo_imgs_q = [], []
    for name in EMOTION_PROTOTYPES:
        if only and name not in only:
            continue
        e, j = prototype_params(name, head)
        v = verts(e, j)
        emo_imgs_f.append(label(rend.render(head_meshes(head, v, np.eye(3)), front), name))
        r = rot_y(-35)
        vq = v @ r.T
        emo_imgs_q.append(rend.render(head_meshes(head, v, r), (0.5 * (vq[:, 0].min() + vq[:, 0].max()), cy, 0.094)))
    if emo_imgs_f:
        rows.append(np.concatenate(emo_imgs_f, 1))
        rows.append(np.concatenate(emo_imgs_q, 1))
    # AU panels
    au_imgs = []
    names = list(head.expression_names) + ["AU26"]
    for name in names:
        if only and name not in only:
            continue
        e = np.zeros(e_dim)
        j = np.zeros(3)
        if name == "AU26":
            j[0] = JAW_RAD_PER_AU26
        else:
            e[head.expression_names.index(name)] = 1.0
        v = verts(e, j)
        mag = np.linalg.norm(v - v0, axis=1)
        au_imgs.append(label(rend.render(head_meshes(head, v, np.eye(3), heat(mag, 0.07 * 0.14)), front), name))
    per_row = max(len(emo_imgs_f), 8)
    while au_imgs:
        chunk = au_imgs[:per_row]
        au_imgs = au_imgs[per_row:]
        while len(chunk) < per_row:
            chunk.append(np.full_like(chunk[0], 255))
        rows.append(np.concatenate(chunk, 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    img = np.concatenate(rows, 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import imageio.v2 as imageio

    tmp = args.out.with_suffix(".tmp.png")
    imageio.imwrite(tmp, img)
    tmp.replace(args.out)
    print(f"wrote {args.out} {img.shape[1]}x{img.shape[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
