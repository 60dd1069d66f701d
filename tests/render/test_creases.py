"""Painted expression creases (flame_transit/render/creases.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flame_transit.head import open_head as oh
from flame_transit.render.creases import CREASES, CreaseRig


def verts_for(head, **values) -> np.ndarray:
    e, j = oh.au_params(values, head)
    pose = torch.zeros(1, 15)
    pose[0, 6:9] = torch.as_tensor(j)
    with torch.no_grad():
        return head(expression=torch.as_tensor(e)[None], pose=pose).vertices[0].numpy().astype(np.float64)


@pytest.fixture(scope="module")
def rig():
    r = CreaseRig.for_template()
    assert r is not None
    return r


def test_rig_binds_every_crease_on_both_sides(rig):
    assert rig.names == [f"{c.name}_{s}" for c in CREASES for s in ("l", "r")]
    assert rig.corners.max() < 468 and rig.corners.min() >= 0  # skin landmarks only
    assert (rig.weights >= 0).all()
    np.testing.assert_allclose(rig.weights.sum(axis=1), 1.0, atol=1e-9)
    assert rig.faces.max() < len(rig.centre)
    # on the (symmetric) template, each right strip is its left strip reflected in x
    from flame_transit.head.io import OPEN_HEAD_PATH

    with np.load(OPEN_HEAD_PATH) as z:
        pts = rig.interpolate(np.asarray(z["v_template"], dtype=np.float64))
    for k in range(0, len(rig.names), 2):
        left, right = pts[rig.strip_of_point == k], pts[rig.strip_of_point == k + 1] * [-1, 1, 1]
        gap = np.linalg.norm(left[:, None] - right[None], axis=2).min(axis=1)
        assert gap.max() < 2e-4, rig.names[k]


@pytest.mark.parametrize("crease, au", [
    ("glabellar_furrow", "AU4"), ("forehead_line_mid", "AU1"), ("crows_foot_mid", "AU6"),
    ("infraorbital_furrow", "AU6"),
    ("nasolabial_fold", "AU12"), ("nose_wrinkle_upper", "AU9"), ("mentolabial_sulcus", "AU17"),
])
def test_each_crease_appears_with_its_action_unit(rig, open_head, crease, au):
    rest = verts_for(open_head)
    k = rig.names.index(f"{crease}_l")
    k_r = rig.names.index(f"{crease}_r")
    assert rig.strength(rest, rest)[k] == 0.0
    weak = rig.strength(verts_for(open_head, **{au: 0.5}), rest)
    strong = rig.strength(verts_for(open_head, **{au: 2.0}), rest)
    assert strong[k] > 0.5 and strong[k] >= weak[k]
    assert abs(strong[k] - strong[k_r]) < 1e-6  # symmetric AU, symmetric folds


def test_creases_are_specific(rig, open_head):
    rest = verts_for(open_head)
    s = dict(zip(rig.names, rig.strength(verts_for(open_head, AU4=2.0), rest)))
    assert s["glabellar_furrow_l"] > 0.9
    assert s["forehead_line_mid_l"] == 0.0  # lowered brows stretch the forehead
    s = dict(zip(rig.names, rig.strength(verts_for(open_head, AU12=2.0), rest)))
    assert s["nasolabial_fold_l"] > 0.5 and s["glabellar_furrow_l"] == 0.0
    # the lower-lid furrow comes with a raised cheek, not with a tightened lid
    s = dict(zip(rig.names, rig.strength(verts_for(open_head, AU7=2.0), rest)))
    assert s["infraorbital_furrow_l"] == 0.0


def test_visibility_scales_darkening(rig, open_head):
    rest = verts_for(open_head)
    v = verts_for(open_head, AU4=2.0)
    dark, shown = rig.ratio(v, rest)
    assert dark.min() < 0.7 and dark.max() == 1.0
    # only the creases that show are drawn: the frown lines, not the forehead's
    drawn = np.unique(rig.strip_of_point[np.unique(shown)])
    assert {rig.names[k] for k in drawn} >= {"glabellar_furrow_l", "glabellar_furrow_r"}
    assert not any(rig.names[k].startswith("forehead") for k in drawn)
    assert len(rig.ratio(rest, rest)[1]) == 0
    hidden, _ = rig.ratio(v, rest, visibility=np.zeros(len(dark)))
    np.testing.assert_array_equal(hidden, 1.0)


def _scene(open_head, frames, look="shaded", photo=None, params=None, rest="first"):
    from flame_transit.render.scene import Scene

    rest = frames[0] if isinstance(rest, str) else rest  # None: the head's neutral for params
    return Scene(frames.astype(np.float32), open_head.faces.astype(np.int32), params, look=look, size=128,
                 photo=photo, source_vertices=None, head=open_head, rest_vertices=rest, background=None,
                 color=None, mouth=True, shading_gain=1.0)


def test_shaded_frames_draw_creases_only_when_they_show(open_head):
    frames = np.stack([verts_for(open_head), verts_for(open_head, AU4=2.0)])
    scene = _scene(open_head, frames)
    names0 = [layer.name for layer in scene.frame(0).layers]
    layers1 = {layer.name: layer for layer in scene.frame(1).layers}
    assert "creases" not in names0 and "creases" in layers1
    face_color = layers1["face"].color
    assert layers1["creases"].color.min() < 0.8 * face_color.min(axis=0).max()


def test_photo_creases_skip_non_skin(open_head, astronaut):
    img, params = astronaut
    v2d = np.asarray(params.vertices_2d)
    # paint the skin between the brows dark brown, like a fringe of hair or a spectacle bridge
    hair = img.copy()
    x0, x1 = int(v2d[55, 0]) - 4, int(v2d[285, 0]) + 4
    y0, y1 = int(v2d[9, 1]) - 6, int(v2d[168, 1]) + 4
    hair[y0:y1, x0:x1] = (70, 50, 30)
    frames = np.stack([verts_for(open_head)] * 2)
    clean = _scene(open_head, frames, look="photo", photo=img, params=params)
    fringe = _scene(open_head, frames, look="photo", photo=hair, params=params)
    furrows = [k for k, n in enumerate(clean.creases.names) if n.startswith("glabellar_furrow")]
    pts = np.isin(clean.creases.strip_of_point, furrows)
    assert clean.crease_visibility[pts].mean() > 0.5
    assert fringe.crease_visibility[pts].mean() < 0.1


def test_photo_folds_fade_when_the_source_smile_goes(open_head, astronaut):
    from flame_transit.render.scene import FOLD_LIFT

    img, params = astronaut  # the astronaut smiles: her nasolabial folds are in the photo
    with torch.no_grad():
        smiling = open_head(shape=params.shape[None], expression=params.expression[None],
                            pose=params.pose[None], offsets=params.offsets).vertices[0].numpy()
        pose = params.pose.clone()[None]
        pose[:, 6:9] = 0
        neutral = open_head(shape=params.shape[None], expression=torch.zeros_like(params.expression)[None],
                            pose=pose, offsets=params.offsets).vertices[0].numpy()
    scene = _scene(open_head, np.stack([smiling, neutral]).astype(np.float64), look="photo", photo=img,
                   params=params, rest=None)
    names0 = [layer.name for layer in scene.frame(0).layers]
    assert "fold_lift" not in names0 and "creases" not in names0  # the photo's own face: the photo
    lift = {layer.name: layer for layer in scene.frame(1).layers}["fold_lift"]
    rig = scene.fold_lift
    folds = np.isin(rig.strip_of_point, [k for k, n in enumerate(rig.names) if n.startswith("nasolabial")])
    base = rig.interpolate(scene._face_ratio(neutral, scene._normals(neutral)))
    gain = lift.ratio / base
    assert gain[folds].max() > 1.0 + 0.3 * FOLD_LIFT * 0.45
    assert gain.min() >= 1.0 - 1e-6  # (float32 layers)


def test_shaded_clip_measures_folds_and_teeth_from_the_neutral_face():
    # the shaded look's camera params carry no face; its reference must still be the clip's
    # neutral face, not the first frame (an angry first frame would show no frown lines, and an
    # open-mouthed first frame would misplace the teeth)
    from flame_transit import animate
    from flame_transit.render.base import _neutral_rest

    anim = animate(None, "from anger to surprise", fps=4, duration=0.5, look="shaded", seed=0)
    rest = _neutral_rest(anim)
    assert rest is not None and rest.shape == anim.vertices.shape[1:]
    lips_open = lambda v: float(v[13, 1] - v[14, 1])  # noqa: E731
    assert lips_open(rest) < 0.1 * lips_open(anim.vertices[-1])  # surprise opens it, rest is closed
    rig = CreaseRig.for_template()
    first = dict(zip(rig.names, rig.strength(anim.vertices[0].astype(np.float64), rest)))
    assert first["glabellar_furrow_l"] > 0.5  # anger frowns relative to neutral


def test_photo_look_leaves_out_the_folds_its_photo_already_shows():
    shaded = CreaseRig.for_template(look="shaded")
    photo = CreaseRig.for_template(look="photo")
    assert "infraorbital_furrow_l" in shaded.names and "infraorbital_furrow_l" not in photo.names
    assert set(photo.names) == {n for n in shaded.names if not n.startswith("infraorbital")}
