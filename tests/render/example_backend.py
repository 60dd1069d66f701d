"""A minimal renderer backend: a naive triangle rasteriser in torch on the shared compositor.

It is the example of docs/CONVENTIONS.md ("Adding a renderer backend"): one file holding a
:class:`~flame_transit.render.backends.raster.RasterRenderer` subclass, plus one
``register_backend`` call. Interpolation, lighting, texture sampling, relighting and layer
compositing are the shared ones; the file only says which triangle covers each pixel.
"""

from __future__ import annotations

import numpy as np
import torch

from flame_transit.render.backends.raster import RasterRenderer


class ExampleRenderer(RasterRenderer):
    """Pixel-centre sampling, nearest triangle wins (every pixel against every triangle)."""

    name = "example"

    def _rasterize(self, xy, z, faces):
        h, w = self._size
        py, px = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5,
                                torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij")
        px, py = px.reshape(1, -1), py.reshape(1, -1)  # (1, P) pixel centres
        p2f = torch.full((h * w,), -1, dtype=torch.long)
        zbuf = torch.full((h * w,), float("inf"), dtype=torch.float64)
        bary = torch.zeros(h * w, 3, dtype=torch.float64)
        tri = np.concatenate([xy, z[:, None]], 1).astype(np.float64)[faces]  # (F, 3 corners, xyz)
        lo, hi = np.ceil(tri[:, :, :2].min(1) - 0.5), np.floor(tri[:, :, :2].max(1) - 0.5)
        keep = np.flatnonzero((lo <= hi).all(1) & (hi >= 0).all(1) & (lo[:, 0] < w) & (lo[:, 1] < h))
        tri = torch.as_tensor(tri[keep])  # only triangles whose box holds a pixel centre
        for start in range(0, len(tri), 256):
            a, b, c = (tri[start:start + 256, i, :, None] for i in range(3))
            den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
            den = torch.where(den.abs() < 1e-12, torch.full_like(den, float("nan")), den)
            l0 = ((b[:, 1] - c[:, 1]) * (px - c[:, 0]) + (c[:, 0] - b[:, 0]) * (py - c[:, 1])) / den
            l1 = ((c[:, 1] - a[:, 1]) * (px - c[:, 0]) + (a[:, 0] - c[:, 0]) * (py - c[:, 1])) / den
            lam = torch.stack([l0, l1, 1 - l0 - l1], -1)  # (n, P, 3)
            depth = (lam * torch.stack([a[:, 2], b[:, 2], c[:, 2]], -1)).sum(-1)
            depth = torch.where((lam >= 0).all(-1), depth, torch.full_like(depth, float("inf")))
            best, k = depth.min(0)  # nearest triangle of the chunk per pixel
            hit = best < zbuf
            p2f[hit], zbuf[hit] = torch.as_tensor(keep)[start + k[hit]], best[hit]
            bary[hit] = lam[k[hit], hit.nonzero()[:, 0]]
        return p2f.view(h, w), bary.view(h, w, 3).float(), zbuf.view(h, w).float()
