"""The compositor shared by rasteriser backends (PyTorch3D, and any other that yields, per
pixel, the nearest triangle and its barycentric coordinates): attribute interpolation, the
light model of :mod:`flame_transit.render.lights`, texture sampling and layer compositing, in
torch, on the backend's device. The GL backend does the same in its shaders.

A backend subclasses :class:`RasterRenderer` and implements :meth:`~RasterRenderer._rasterize`.
"""

from __future__ import annotations

import abc
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..base import Renderer
from ..lights import relight, shade_lambert, specular_highlight
from ..types import Frame, Layer

__all__ = ["RasterRenderer", "signed_areas"]


def signed_areas(xy: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(F,)`` signed areas ``(b - a) x (c - a)`` of pixel-space triangles ``(u, v)``.

    Example:
        >>> signed_areas(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([[0, 1, 2]])).tolist()
        [1.0]
    """
    tri = np.asarray(xy, np.float64)[np.asarray(faces)]
    return (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - \
           (tri[:, 2, 0] - tri[:, 0, 0]) * (tri[:, 1, 1] - tri[:, 0, 1])


class RasterRenderer(Renderer):
    """A backend built on a triangle rasteriser; everything but :meth:`_rasterize` is shared.

    Args:
        device: torch device for the compositing (default ``"cpu"``).
    """

    name = "raster"

    def __init__(self, device: Any = "cpu") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        #: skip the colour work of a layer no pixel shows; on a GPU asking that waits for the
        #: device, while compositing an all-hidden layer changes nothing, so it is drawn anyway
        self.skip_hidden_layers = self.device.type == "cpu"
        self._textures: Dict[str, Any] = {}
        self._size: Tuple[int, int] = (0, 0)

    @abc.abstractmethod
    def _rasterize(self, xy: np.ndarray, z: np.ndarray, faces: np.ndarray) -> Tuple[Any, Any, Any]:
        """Rasterise pixel-space triangles into a frame of ``self._size``.

        Args:
            xy: ``(N, 2)`` output pixels (u right, v down; pixel centres at integers + 0.5).
            z: ``(N,)`` depth, > 0, smaller = nearer.
            faces: ``(F, 3)`` vertex indices.

        Returns:
            torch tensors on ``self.device``: ``pix_to_face (H, W)`` long (-1 = empty),
            ``bary (H, W, 3)`` barycentric coordinates of the pixel centre, ``zbuf (H, W)``.
        """

    def _rasterize_layers(self, layers: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]]) -> List[Tuple[Any, Any, Any]]:
        """:meth:`_rasterize` of each ``(xy, z, faces)``, in order. A backend that rasterises a
        batch of meshes in one call overrides this (one call a frame instead of one a layer)."""
        return [self._rasterize(xy, z, faces) for xy, z, faces in layers]

    @property
    def device_info(self) -> str:
        return f"{self.name}: {self.device}"

    # -- per clip --------------------------------------------------------------------------------
    def _begin(self, size: Tuple[int, int], textures: Dict[str, np.ndarray]) -> None:
        torch = self.torch
        self._size = tuple(size)
        self._textures = {
            name: torch.as_tensor(np.ascontiguousarray(img, dtype=np.float32), device=self.device).permute(2, 0, 1)[None] / 255.0
            for name, img in textures.items()
        }

    def _end(self) -> None:
        self._textures = {}

    def close(self) -> None:
        self._textures = {}

    # -- drawing ---------------------------------------------------------------------------------
    def _interp(self, pix_to_face: Any, bary: Any, faces: np.ndarray, attr: np.ndarray) -> Any:
        """``(H, W, D)`` per-pixel attribute from per-vertex ``attr (N, D)``."""
        torch = self.torch
        a = torch.as_tensor(np.ascontiguousarray(attr, dtype=np.float32), device=self.device)
        f = torch.as_tensor(np.asarray(faces, dtype=np.int64), device=self.device)
        return (a[f][pix_to_face] * bary[..., None]).sum(-2)

    def _layer_colour(self, layer: Layer, p2f: Any, bary: Any) -> Any:
        torch = self.torch
        if layer.kind == "lit":
            n = torch.nn.functional.normalize(self._interp(p2f, bary, layer.faces, layer.normal), dim=-1, eps=1e-20)
            col = self._interp(p2f, bary, layer.faces, layer.color)
            spec = layer.specular * specular_highlight(n)
            return (col * shade_lambert(n)[..., None] + spec[..., None]).clamp(0, 1)
        ratio = layer.ratio if layer.ratio is not None else np.ones(len(layer.uv))
        uvr = np.concatenate([np.asarray(layer.uv, np.float32), np.asarray(ratio, np.float32)[:, None]], axis=1)
        uvr_i = self._interp(p2f, bary, layer.faces, uvr)
        h, w = self._size
        grid = torch.stack([uvr_i[..., 0] / w * 2 - 1, uvr_i[..., 1] / h * 2 - 1], -1)[None]

        def sample(name: str) -> Any:
            tex = self._textures[name]
            return torch.nn.functional.grid_sample(tex, grid, mode="bilinear", padding_mode="border",
                                                   align_corners=False)[0].permute(1, 2, 0)

        c = sample(layer.texture)
        if layer.texture2 and layer.mix > 0 and layer.texture2 in self._textures:
            c = c + (sample(layer.texture2) - c) * float(layer.mix)
        if layer.ratio is not None:
            c = relight(c, uvr_i[..., 2])
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
        layers = [l for l in frame.layers if len(l.xy) and len(l.faces)]
        # rasterisers: smaller z = nearer, z > 0 in front of the camera
        rasters = self._rasterize_layers([
            (np.asarray(l.xy, np.float32),
             (hi - np.asarray(l.depth, np.float32) + 1.0) if l.depth is not None and l.depth_test
             else np.ones(len(l.xy), np.float32), np.asarray(l.faces)) for l in layers])
        for layer, (p2f, bary, zb) in zip(layers, rasters):
            use_depth = layer.depth is not None and layer.depth_test
            mask = p2f >= 0
            if layer.cull_back:  # from the pixel-space winding, whatever the rasteriser's convention
                area = signed_areas(layer.xy, layer.faces)
                front = torch.as_tensor((area > 0) if frame.front_ccw_pixels else (area < 0), device=self.device)
                mask = mask & front[p2f.clamp(min=0)]
            if use_depth:
                mask = mask & (zb < depth)
            if self.skip_hidden_layers and not bool(mask.any()):
                continue
            col = self._layer_colour(layer, p2f.clamp(min=0), bary)
            a = float(layer.alpha)
            img = torch.where(mask[..., None], img * (1 - a) + col * a, img)
            if use_depth and a >= 1.0:
                depth = torch.where(mask, zb, depth)
        out = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        return np.ascontiguousarray(out)
