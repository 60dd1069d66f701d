"""A tiny stand-in for the three PyTorch3D entry points the backend uses, written from
PyTorch3D's documented conventions (NDC +X left, +Y up, shorter side spanning [-1, 1] with pixel
edges at the ends, smaller z nearer, ``pix_to_face == -1`` where empty). It lets the backend's
own code (layer compositing, shading, texture sampling) run where PyTorch3D is not installed;
it says nothing about the real library's behaviour."""

from __future__ import annotations

import sys
import types

import torch


class Meshes:
    """A batch of meshes; packed faces index the packed vertices, as in PyTorch3D."""

    def __init__(self, verts, faces):
        self._verts, self._faces = list(verts), list(faces)

    def __len__(self):
        return len(self._verts)

    def verts_packed(self):
        return torch.cat(self._verts)

    def faces_packed(self):
        offsets = torch.tensor([0] + [len(v) for v in self._verts[:-1]]).cumsum(0)
        return torch.cat([f + o for f, o in zip(self._faces, offsets)])

    def mesh_to_faces_packed_first_idx(self):
        return torch.tensor([0] + [len(f) for f in self._faces[:-1]]).cumsum(0)


def rasterize_meshes(meshes, image_size, blur_radius=0.0, faces_per_pixel=1, bin_size=None,
                     perspective_correct=False, cull_backfaces=False, **_):
    """Each mesh of the batch alone (nearest face per pixel); face indices into the packed list."""
    h, w = image_size
    v, f = meshes.verts_packed(), meshes.faces_packed()
    first = meshes.mesh_to_faces_packed_first_idx().tolist() + [len(f)]
    out = [_rasterize_one(v, f, first[i], first[i + 1], h, w) for i in range(len(meshes))]
    return tuple(torch.cat(parts) for parts in zip(*out))


def _rasterize_one(v, f, start, stop, h, w):
    half = min(h, w) / 2.0
    # pixel centres in NDC: column j -> x = -(j + 0.5 - w/2) / half, row i -> y = -(i + 0.5 - h/2) / half
    xs = -(torch.arange(w, dtype=torch.float32) + 0.5 - w / 2) / half
    ys = -(torch.arange(h, dtype=torch.float32) + 0.5 - h / 2) / half
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    p2f = torch.full((h, w), -1, dtype=torch.long)
    zbuf = torch.full((h, w), float("inf"))
    bary = torch.zeros(h, w, 3)
    for k, (a, b, c) in enumerate(f[start:stop].tolist(), start):
        A, B, C = v[a], v[b], v[c]
        den = (B[1] - C[1]) * (A[0] - C[0]) + (C[0] - B[0]) * (A[1] - C[1])
        if abs(float(den)) < 1e-12:
            continue
        l0 = ((B[1] - C[1]) * (px - C[0]) + (C[0] - B[0]) * (py - C[1])) / den
        l1 = ((C[1] - A[1]) * (px - C[0]) + (A[0] - C[0]) * (py - C[1])) / den
        l2 = 1 - l0 - l1
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        z = l0 * A[2] + l1 * B[2] + l2 * C[2]
        closer = inside & (z < zbuf) & (z > 0)
        p2f = torch.where(closer, torch.tensor(k), p2f)
        zbuf = torch.where(closer, z, zbuf)
        bary = torch.where(closer[..., None], torch.stack([l0, l1, l2], -1), bary)
    zbuf = torch.where(p2f >= 0, zbuf, torch.tensor(-1.0))
    return p2f[None, ..., None], zbuf[None, ..., None], bary[None, ..., None, :], torch.zeros(1, h, w, 1)


def interpolate_face_attributes(pix_to_face, barycentric_coords, face_attributes):
    idx = pix_to_face.clamp(min=0)
    attrs = face_attributes[idx]  # (N, H, W, K, 3, D)
    out = (barycentric_coords[..., None] * attrs).sum(-2)
    return torch.where((pix_to_face >= 0)[..., None], out, torch.zeros_like(out))


def install(monkeypatch) -> None:
    root = types.ModuleType("pytorch3d")
    ops = types.ModuleType("pytorch3d.ops")
    structures = types.ModuleType("pytorch3d.structures")
    renderer = types.ModuleType("pytorch3d.renderer")
    mesh = types.ModuleType("pytorch3d.renderer.mesh")
    rm = types.ModuleType("pytorch3d.renderer.mesh.rasterize_meshes")
    ops.interpolate_face_attributes = interpolate_face_attributes
    structures.Meshes = Meshes
    rm.rasterize_meshes = rasterize_meshes
    for name, mod in {"pytorch3d": root, "pytorch3d.ops": ops, "pytorch3d.structures": structures,
                      "pytorch3d.renderer": renderer, "pytorch3d.renderer.mesh": mesh,
                      "pytorch3d.renderer.mesh.rasterize_meshes": rm}.items():
        monkeypatch.setitem(sys.modules, name, mod)
