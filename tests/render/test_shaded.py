"""The shaded look's appearance cues (flame_transit/render/shaded.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flame_transit.head.open_head import REGIONS
from flame_transit.render.scene import EYE_WHITE, IRIS, Scene
from flame_transit.render.shaded import PUPIL

from .conftest import aus


def shaded_scene(head, **values):
    """A two-frame shaded scene of the open head: neutral, then ``values`` (AU intensities)."""
    ex = torch.stack([aus(head), aus(head, **values)])
    with torch.no_grad():
        v = head(expression=ex, pose=torch.zeros(2, 15)).vertices.numpy().astype(np.float32)
    return Scene(v, head.faces.astype(np.int32), None, look="shaded", size=(256, 256), photo=None,
                 source_vertices=None, head=head, rest_vertices=v[0], background=None, color=None,
                 mouth=True, shading_gain=1.0)


@pytest.fixture(scope="module")
def scene(open_head):
    return shaded_scene(open_head, AU5=2.0)


def test_eyes_have_a_pupil_and_a_shaded_white(scene):
    eyes = scene.eyes
    assert eyes is not None
    for name in ("iris_left", "iris_right"):
        tri = dict((n, t) for n, t, _ in scene.eye_parts)[name]
        c = eyes.colors[name][np.unique(tri)]
        assert np.isclose(c, PUPIL).all(axis=1).sum() == 1  # the disk's centre
        assert np.isclose(c, IRIS).all(axis=1).sum() == len(c) - 1
    for name in ("eye_left", "eye_right"):
        tri = dict((n, t) for n, t, _ in scene.eye_parts)[name]
        ids = np.unique(tri)
        lum = eyes.colors[name][ids].mean(axis=1)
        assert np.isclose(lum.max(), EYE_WHITE.mean())  # the middle of the white
        back = ids[ids >= 468]  # the socket ring behind the lids: darker, darkest under the upper lid
        assert lum[np.isin(ids, back)].min() < 0.6 * EYE_WHITE.mean()


def test_lash_strips_ride_on_the_upper_lids(scene):
    for t in (0, 1):
        frame = scene.frame(t)
        (layer,) = [layer for layer in frame.layers if layer.name == "lashes"]
        p = scene._project(scene.verts[t].astype(np.float64), t)
        start = 0
        for lid in ("eye_l_upper", "eye_r_upper"):
            ids = np.asarray(REGIONS[lid])
            n = len(ids)
            margin, edge = layer.xy[start:start + n], layer.xy[start + n:start + 2 * n]
            np.testing.assert_allclose(margin, p[ids, :2])  # the margin row is the contour
            up = margin[:, 1] - edge[:, 1]  # the strip grows upwards (pixel y points down)
            assert (up[1:-1] > 0.5).all()  # (at the corners it tapers off sideways)
            assert layer.color[start:start + n].max() < 0.15  # dark at the margin
            start += 2 * n
        assert start == len(layer.xy) and layer.faces.max() == start - 1


def test_lash_line_darkens_the_rendered_lid(gl_renderer, open_head, scene):
    """In pixels: the lid margin above the iris is dark, the skin a little above it is not."""
    frames = list(gl_renderer.iter_frames(scene.verts, scene.faces, None, look="shaded", size=(256, 256),
                                          head=open_head, rest_vertices=scene.rest))
    img = frames[1].astype(np.float64).mean(axis=2)
    p = scene._project(scene.verts[1].astype(np.float64), 1)
    for top in (386, 159):  # upper-lid midpoints
        x, y = np.round(p[top, :2] - 0.5).astype(int)
        margin = img[y - 2: y + 1, x - 1: x + 2].min()
        skin = img[y - 8, x]  # on the lid, below the brow
        assert margin < 0.45 * skin, (top, margin, skin)
