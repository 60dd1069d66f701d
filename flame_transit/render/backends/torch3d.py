"""PyTorch3D backend (optional; only when asked for by name: ``get_renderer("pytorch3d")``).

Each layer of a :class:`~flame_transit.render.types.Frame` is rasterised with
``pytorch3d.renderer.mesh.rasterize_meshes`` in PyTorch3D's NDC (+X left, +Y up, +Z into the
screen, the shorter image side spanning [-1, 1], pixel edges at the ends:
``align_corners=False``); interpolation, shading and compositing are the shared ones of
:class:`~flame_transit.render.backends.raster.RasterRenderer`.

UNTESTED on real PyTorch3D: it is not installable on the machine this was written on; the code
follows the PyTorch3D 0.7 API. ``tests/render/test_torch3d.py`` runs (and compares with the GL
backend) wherever PyTorch3D is installed; the shared compositor is tested on CPU through a
stand-in rasteriser. No anti-aliasing (``faces_per_pixel=1``).
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Tuple

import numpy as np

from ...errors import RendererUnavailableError
from .raster import RasterRenderer

__all__ = ["PyTorch3DRenderer"]

log = logging.getLogger(__name__)


class PyTorch3DRenderer(RasterRenderer):
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
            from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes  # noqa: F401
            from pytorch3d.structures import Meshes  # noqa: F401
        except Exception as exc:
            raise RendererUnavailableError(
                f"PyTorch3D is not importable ({exc}); install it (see "
                "https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md) or use renderer='gl'"
            ) from exc
        import torch

        super().__init__(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.bin_size = bin_size
        log.info("pytorch3d renderer on %s", self.device)

    @property
    def device_info(self) -> str:
        if self.device.type == "cuda":
            return f"pytorch3d: {self.torch.cuda.get_device_name(self.device)}"
        return f"pytorch3d: {self.device}"

    def _rasterize(self, xy: np.ndarray, z: np.ndarray, faces: np.ndarray) -> Tuple[Any, Any, Any]:
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
        # back faces are culled by the compositor from the pixel-space winding
        pix_to_face, zbuf, bary, _ = rasterize_meshes(
            mesh, image_size=(h, w), blur_radius=0.0, faces_per_pixel=1, bin_size=self.bin_size,
            perspective_correct=False, cull_backfaces=False,
        )
        return pix_to_face[0, ..., 0], bary[0, ..., 0, :], zbuf[0, ..., 0]
