"""PyTorch3D backend (optional; used by ``get_renderer("auto")`` when PyTorch3D is importable
and CUDA is available).

It draws the same :class:`~flame_transit.render.base.Frame` layer lists as the GL backend:
each layer is rasterised with ``pytorch3d.renderer.mesh.rasterize_meshes`` in PyTorch3D's NDC
(+X left, +Y up, +Z into the screen, the shorter image side spanning [-1, 1], pixel edges at
the ends: ``align_corners=False``), its attributes are interpolated with
``pytorch3d.ops.interpolate_face_attributes``, shaded with the same formulas as the GL shaders
(the lit look's light model; the photo look's per-vertex relighting,
:func:`~flame_transit.render.base.relight`)
and composited in layer order with a z-buffer.

UNTESTED: PyTorch3D is not installable on the machine this was written on; the code follows
the PyTorch3D 0.7 API. The tests in ``tests/render/test_torch3d.py`` run (and compare with the
GL backend) wherever PyTorch3D is installed. No anti-aliasing (``faces_per_pixel=1``).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ...errors import RendererUnavailableError
from ..base import AMBIENT, HEADLIGHT, KEY, KEY_DIR, SHININESS, SPECULAR, Frame, Layer, Renderer

__all__ = ["PyTorch3DRenderer"]

log = logging.getLogger(__name__)


class PyTorch3DRenderer(Renderer):
    """Renderer on PyTorch3D's rasteriser.

    Args:
        device: torch device (default ``"cuda"`` when available, else ``"cpu"``).
        bin_size: PyTorch3D's coarse-to-fine bin size (``None`` = its heuristic; 0 = naive).

    Raises:
        RendererUnavailableError: PyTorch3D is not installed.
    """

    name = "pytorch3d"

    def __init__(self, device: Any = None, bin_size: Optional[int] = None) -> None:
        try:
            import pytorch3d  # noqa: F401
            from pytorch3d.ops import interpolate_face_attributes  # noqa: F401
            from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes  # noqa: F401
            from pytorch3d.structures import Meshes  # noqa: F401
        except Exception as exc:
            raise RendererUnavailableError(
                f"PyTorch3D is not importable ({exc}); install it (see "
                "https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md) or use renderer='gl'"
            ) from exc
        import torch

        self.torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.bin_size = bin_size
        self._textures: Dict[str, Any] = {}
        self._size: Tuple[int, int] = (0, 0)
        log.info("pytorch3d renderer on %s", self.device)

    @property
    def device_info(self) -> str:
        if self.device.type == "cuda":
            return f"pytorch3d: {self.torch.cuda.get_device_name(self.device)}"
        return f"pytorch3d: {self.device}"

    # -- per clip --------------------------------------------------------------------------------
    def _begin(self, size: Tuple[int, int], textures: Dict[str, np.ndarray]) -> None:
        torch = self.torch
        self._size = tuple(size)
        self._textures = {
            name: torch.as_tensor(np.ascontiguousarray(img), device=self.device).permute(2, 0, 1)[None].float() / 255.0
            for name, img in textures.items()
        }

    def _end(self) -> None:
        self._textures = {}

    def close(self) -> None:
        self._textures = {}

    # -- drawing ---------------------------------------------------------------------------------
    def _shade(self, n):
        torch = self.torch
        n = torch.nn.functional.normalize(n, dim=-1, eps=1e-20)
        n = torch.where(n[..., 2:3] < 0, -n, n)
        key = torch.as_tensor(KEY_DIR, dtype=n.dtype, device=n.device)
        return AMBIENT + HEADLIGHT * n[..., 2].clamp(min=0) + KEY * (n @ key).clamp(min=0), n

    def _rasterize(self, xy: np.ndarray, z: np.ndarray, faces: np.ndarray, cull: bool):
        """Pixel-space triangles -> (pix_to_face (H, W), bary (H, W, 3), zbuf (H, W))."""
        torch = self.torch
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
        from pytorch3d.structures import Meshes

        h, w = self._size
        half = min(h, w) / 2.0
        verts = np.empty((len(xy), 3), dtype=np.float32)
        verts[:, 0] = -(xy[:, 0] - w / 2.0) / half  # PyTorch3D NDC: +X left
        verts[:, 1] = -(xy[:, 1] - h / 2.0) / half  # +Y up
        verts[:, 2] = z
        mesh = Meshes(
            verts=[torch.as_tensor(verts, device=self.device)],
            faces=[torch.as_tensor(np.asarray(faces, dtype=np.int64), device=self.device)],
        )
        pix_to_face, zbuf, bary, _ = rasterize_meshes(
            mesh,
            image_size=(h, w),
            blur_radius=0.0,
            faces_per_pixel=1,
            bin_size=self.bin_size,
            perspective_correct=False,
            cull_backfaces=cull,
        )
        return pix_to_face[0, ..., 0], bary[0, ..., 0, :], zbuf[0, ..., 0]

    def _interp(self, pix_to_face, bary, faces: np.ndarray, attr: np.ndarray):
        torch = self.torch
        from pytorch3d.ops import interpolate_face_attributes

        a = torch.as_tensor(np.ascontiguousarray(attr, dtype=np.float32), device=self.device)
        f = torch.as_tensor(np.asarray(faces, dtype=np.int64), device=self.device)
        face_attr = a[f]  # (F, 3, D)
        out = interpolate_face_attributes(pix_to_face[None, ..., None], bary[None, ..., None, :], face_attr)
        return out[0, ..., 0, :]  # (H, W, D)

    def _layer_colour(self, layer: Layer, frame: Frame, p2f, bary):
        torch = self.torch
        if layer.kind == "lit":
            n = self._interp(p2f, bary, layer.faces, layer.normal)
            col = self._interp(p2f, bary, layer.faces, layer.color)
            s, nn = self._shade(n)
            half_key = torch.as_tensor(KEY_DIR + np.array([0.0, 0.0, 1.0]), dtype=nn.dtype, device=nn.device)
            half_key = half_key / half_key.norm()
            spec = layer.specular * SPECULAR * (nn[..., 2].clamp(min=0) ** SHININESS
                                                + 0.6 * (nn @ half_key).clamp(min=0) ** SHININESS)
            return (col * s[..., None] + spec[..., None]).clamp(0, 1)
        ratio = layer.ratio if layer.ratio is not None else np.ones(len(layer.uv))
        uvr = np.concatenate([np.asarray(layer.uv, np.float32), np.asarray(ratio, np.float32)[:, None]], axis=1)
        uvr_i = self._interp(p2f, bary, layer.faces, uvr)
        h, w = self._size
        grid = torch.stack([uvr_i[..., 0] / w * 2 - 1, uvr_i[..., 1] / h * 2 - 1], -1)[None]

        def sample(name: str):
            tex = self._textures[name]
            return torch.nn.functional.grid_sample(tex, grid, mode="bilinear", padding_mode="border",
                                                   align_corners=False)[0].permute(1, 2, 0)

        c = sample(layer.texture)
        if layer.texture2 and layer.mix > 0 and layer.texture2 in self._textures:
            c = c + (sample(layer.texture2) - c) * float(layer.mix)
        if layer.ratio is not None:
            r = uvr_i[..., 2:3]
            lum = (c * torch.tensor([0.299, 0.587, 0.114], device=c.device)).sum(-1, keepdim=True)
            c = torch.where(r <= 1, c * r, c + (r - 1) * lum)
        return c.clamp(0, 1)

    def _draw(self, frame: Frame) -> np.ndarray:
        torch = self.torch
        h, w = self._size
        if frame.background_texture:
            img = self._textures[frame.background_texture][0].permute(1, 2, 0).clone()
        else:
            img = torch.tensor(frame.background, dtype=torch.float32, device=self.device).expand(h, w, 3).clone()
        depth = torch.full((h, w), float("inf"), device=self.device)
        tested = [l.depth for l in frame.layers if l.depth is not None and l.depth_test and len(l.depth)]
        hi = max(float(np.max(d)) for d in tested) if tested else 0.0
        for layer in frame.layers:
            if len(layer.xy) == 0 or len(layer.faces) == 0:
                continue
            use_depth = layer.depth is not None and layer.depth_test
            # PyTorch3D: smaller z = nearer, z > 0 in front of the camera
            z = (hi - np.asarray(layer.depth, np.float32) + 1.0) if use_depth else np.ones(len(layer.xy), np.float32)
            # back faces are culled by hand from the pixel-space winding (independent of
            # PyTorch3D's own culling convention)
            p2f, bary, zb = self._rasterize(layer.xy, z, layer.faces, cull=False)
            mask = p2f >= 0
            if layer.cull_back:
                tri = np.asarray(layer.xy, np.float64)[np.asarray(layer.faces)]
                area = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - \
                       (tri[:, 2, 0] - tri[:, 0, 0]) * (tri[:, 1, 1] - tri[:, 0, 1])  # signed area in (u, v)
                front = torch.as_tensor((area > 0) if frame.front_ccw_pixels else (area < 0), device=self.device)
                mask = mask & front[p2f.clamp(min=0)]
            if use_depth:
                mask = mask & (zb < depth)
            if not bool(mask.any()):
                continue
            col = self._layer_colour(layer, frame, p2f.clamp(min=0), bary)
            a = float(layer.alpha)
            img = torch.where(mask[..., None], img * (1 - a) + col * a, img)
            if use_depth and a >= 1.0:
                depth = torch.where(mask, zb, depth)
        out = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        return np.ascontiguousarray(out)
