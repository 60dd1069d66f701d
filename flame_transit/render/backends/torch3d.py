"""PyTorch3D backend (optional; only when asked for by name: ``get_renderer("pytorch3d")``).

Each layer of a :class:`~flame_transit.render.types.Frame` is rasterised with
``pytorch3d.renderer.mesh.rasterize_meshes`` in PyTorch3D's NDC (+X left, +Y up, +Z into the
screen, the shorter image side spanning [-1, 1], pixel edges at the ends:
``align_corners=False``); interpolation, shading and compositing are the shared ones of
:class:`~flame_transit.render.backends.raster.RasterRenderer`.

All layers of a frame go through one ``rasterize_meshes`` call, as a batch of meshes.
``tests/render/test_torch3d.py`` compares this backend with the GL one wherever PyTorch3D is
installed. It has passed against PyTorch3D 0.7.9 on the CPU, and on CUDA (an H200) with
PyTorch3D's Python package and only its mesh rasteriser compiled
(``benchmarks/RESULTS_GPU.md``). The shared compositor is also tested on CPU through a
stand-in rasteriser. No anti-aliasing (``faces_per_pixel=1``). On a GPU this path is ~8× slower than the
GL backend, because its compositor is torch code run layer by layer; prefer ``"gl"`` unless
PyTorch3D is what you need.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Sequence, Tuple

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
        return self._rasterize_layers([(xy, z, faces)])[0]

    def _rasterize_layers(self, layers: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]]) -> List[Tuple[Any, Any, Any]]:
        """All layers of a frame as one batch of meshes: one rasteriser call a frame."""
        if not layers:
            return []
        torch = self.torch
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
        from pytorch3d.structures import Meshes

        h, w = self._size
        half = min(h, w) / 2.0
        verts, faces = [], []
        for xy, z, tri in layers:
            v = np.empty((len(xy), 3), dtype=np.float32)
            v[:, 0] = -(xy[:, 0] - w / 2.0) / half  # PyTorch3D NDC: +X left
            v[:, 1] = -(xy[:, 1] - h / 2.0) / half  # +Y up
            v[:, 2] = z
            verts.append(v)
            faces.append(np.asarray(tri, dtype=np.int64))
        # one upload of each kind, split on the device
        v_all = torch.as_tensor(np.concatenate(verts), device=self.device).split([len(v) for v in verts])
        f_all = torch.as_tensor(np.concatenate(faces), device=self.device).split([len(f) for f in faces])
        mesh = Meshes(verts=list(v_all), faces=list(f_all))
        # back faces are culled by the compositor from the pixel-space winding
        pix_to_face, zbuf, bary, _ = rasterize_meshes(
            mesh, image_size=(h, w), blur_radius=0.0, faces_per_pixel=1, bin_size=self.bin_size,
            perspective_correct=False, cull_backfaces=False,
        )
        # face indices come back into the packed (all-layer) face list: make them per layer
        first = mesh.mesh_to_faces_packed_first_idx().view(-1, 1, 1)
        p2f = pix_to_face[..., 0]
        p2f = torch.where(p2f >= 0, p2f - first, p2f)
        return [(p2f[i], bary[i, ..., 0, :], zbuf[i, ..., 0]) for i in range(len(layers))]
