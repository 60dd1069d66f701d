"""PyTorch3D backend: same frames as the GL backend (runs only where PyTorch3D is installed)."""

import numpy as np
import pytest
import torch

pytest.importorskip("pytorch3d")

from flame_transit.params import FaceParams, crop_to_image_matrix  # noqa: E402
from flame_transit.render import get_renderer  # noqa: E402

TRI = np.array([[-0.05, -0.04, 0.0], [0.06, -0.02, 0.0], [-0.01, 0.07, 0.0]])


@pytest.fixture(scope="module")
def p3d():
    return get_renderer("pytorch3d")


def test_flat_triangle_matches_gl(p3d):
    a = torch.as_tensor(crop_to_image_matrix((70.0, 45.0), 80.0), dtype=torch.float32)
    params = FaceParams(shape=torch.zeros(1), expression=torch.zeros(1), pose=torch.zeros(15),
                        cam=torch.tensor([9.0, 0.01, -0.02]), crop_to_image=a, image_size=(96, 128))
    kw = dict(look="shaded", background=(0, 0, 0), color=(0.5, 0.5, 0.5))
    ours = p3d.render(TRI, [[0, 1, 2]], params, **kw)
    with get_renderer("gl", samples=0) as gl:
        ref = gl.render(TRI, [[0, 1, 2]], params, **kw)
    assert ours.shape == ref.shape == (96, 128, 3)
    diff = np.abs(ours.astype(int) - ref.astype(int)).max(axis=2)
    assert (diff > 3).sum() <= 0.03 * (ref.max(axis=2) > 0).sum()


def test_photo_source_frame_reproduces_photo(p3d, open_head, astronaut, astronaut_clip):
    img, p = astronaut
    frame = p3d.render(astronaut_clip[0], open_head.faces, p, look="photo", photo=img, head=open_head)
    err = np.abs(frame.astype(int) - img.astype(int))
    assert err.mean() < 0.5


def test_shaded_clip_close_to_gl(p3d, open_head, astronaut_clip):
    ours = p3d.render(astronaut_clip[:2], open_head.faces, head=open_head, size=128)
    with get_renderer("gl", samples=0) as gl:
        ref = gl.render(astronaut_clip[:2], open_head.faces, head=open_head, size=128)
    assert np.abs(ours.astype(float) - ref.astype(float)).mean() < 3.0



def test_batch_of_layers_is_each_layer_alone(p3d):
    """One rasteriser call for all layers of a frame (packed face ids made per layer again)."""
    from .layer_batches import check_batch_is_each_layer_alone

    check_batch_is_each_layer_alone(p3d)
