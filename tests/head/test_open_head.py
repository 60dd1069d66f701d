"""The bundled open head: layout, AU semantics, symmetry, joints and skinning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from flame_transit.errors import InputError
from flame_transit.head import OPEN_HEAD_PATH, load_head
from flame_transit.head import open_head as oh

W = oh.FACE_WIDTH_M


@pytest.fixture(scope="module")
def head():
    return load_head(dtype=torch.float64)


@pytest.fixture(scope="module")
def npz():
    with np.load(OPEN_HEAD_PATH, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def pose_jaw(rad: float) -> torch.Tensor:
    p = torch.zeros(15, dtype=torch.float64)
    p[6] = rad
    return p


def au(head, **values) -> np.ndarray:
    """Vertices (V, 3) for AU intensities (AU26 goes to the jaw)."""
    e, j = oh.au_params({k: v for k, v in values.items()}, head)
    p = torch.zeros(15, dtype=torch.float64)
    p[6:9] = torch.as_tensor(j, dtype=torch.float64)
    return head(expression=torch.as_tensor(e, dtype=torch.float64), pose=p).vertices.numpy()



# --- layout ---------------------------------------------------------------------------------
def test_dimensions_and_names(head, npz):
    assert head.kind == "open" and head.name == "open-head-v1"
    assert head.num_vertices >= oh.NUM_LANDMARKS
    assert head.faces.shape == (852, 3)
    assert head.faces.max() < oh.NUM_LANDMARKS  # skin = MediaPipe landmarks only
    assert len(np.unique(head.faces)) == 468  # iris points are not skin
    assert head.expression_names == oh.EXPRESSION_NAMES
    assert list(head.expression_names) == [
        "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU16",
        "AU17", "AU20", "AU23", "AU24", "AU25", "AU43", "AU12L", "AU12R", "AU14L", "AU14R",
    ]  # fmt: skip
    assert head.shape_names == oh.SHAPE_NAMES and 10 <= head.num_shape <= 16
    assert head.landmark_indices.tolist() == list(range(478))
    # pose correctives: only the jaw's sin entry (joint 2, rotation entry (2, 1)) carries a field
    assert npz["posedirs"].shape == (head.num_vertices, 3, 36)
    used = np.nonzero(np.abs(npz["posedirs"]).max(axis=(0, 1)))[0]
    assert used.tolist() == [(2 - 1) * 9 + 2 * 3 + 1]
    assert npz["kintree_table"].shape == (2, 5)
    assert head.parents.tolist() == [-1, 0, 1, 1, 1]
    meta = json.loads(str(npz["meta_json"]))
    assert meta["name"] == "open-head-v1" and meta["kind"] == "open" and "licence" in meta
    assert OPEN_HEAD_PATH.stat().st_size < 1_000_000


def test_face_parts(head):
    parts = head.assets.face_parts
    for name in ("mouth_interior", "eye_left", "eye_right", "iris_left", "iris_right", "lips"):
        assert name in parts and len(parts[name]) > 0
        assert parts[name].min() >= 0 and parts[name].max() < head.num_vertices
    # the mouth interior uses extra vertices behind the lips, skinned partly to the jaw
    extra = np.unique(parts["mouth_interior"])
    extra = extra[extra >= oh.NUM_LANDMARKS]
    assert len(extra) > 0
    w = head.lbs_weights.numpy()[extra]
    assert w[:, 2].max() > 0.4 and w[:, 1].max() > 0.4


def test_forward_batch_shapes(head):
    out = head(expression=torch.zeros(2, 3, head.num_expression, dtype=torch.float64))
    assert out.vertices.shape == (2, 3, head.num_vertices, 3)
    assert out.landmarks.shape == (2, 3, 478, 3)
    assert out.joints.shape == (2, 3, 5, 3)
    out = head(shape=torch.zeros(head.num_shape), pose=torch.zeros(4, 6))
    assert out.vertices.shape == (4, head.num_vertices, 3)


def test_normals_point_out_of_the_face(head):
    v = head.v_template.numpy()
    f = head.faces
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert (n[:, 2] > 0).mean() > 0.9
    # consistent orientation: every interior edge is used once in each direction
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len({tuple(x) for x in e.tolist()}) == len(e)


def test_face_width_and_units(head):
    v = head.v_template.numpy()
    assert np.linalg.norm(v[234] - v[454]) == pytest.approx(W, rel=1e-6)
    assert v[1, 2] > v[234, 2] + 0.05  # nose tip in front of the cheek contour (+Z to viewer)
    assert v[10, 1] > v[1, 1] > v[152, 1]  # forehead above nose above chin (+Y up)
    assert v[263, 0] > 0 > v[33, 0]  # subject's left eye at +X


# --- symmetry -------------------------------------------------------------------------------
def test_mirror_index_is_involution_and_template_symmetric(head, npz):
    m = npz["mirror_index"]
    assert m.shape == (478,)
    assert (m[m] == np.arange(478)).all()
    assert m[33] == 263 and m[61] == 291 and m[468] == 473 and m[1] == 1
    v = head.v_template.numpy()[:478]
    assert np.abs(v - v[m] * [-1, 1, 1]).max() < 1e-6


def test_bilateral_aus_are_symmetric(head, npz):
    m = npz["mirror_index"]
    e = head.exprdirs.numpy()[:478]
    for k, name in enumerate(head.expression_names):
        if name[-1] in "LR":
            continue
        d = e[:, :, k]
        assert np.abs(d - d[m] * [-1, 1, 1]).max() < 1e-6, name


def test_unilateral_aus(head):
    e = head.exprdirs.numpy()
    names = head.expression_names
    for base in ("AU12", "AU14"):
        left, right = e[:, :, names.index(base + "L")], e[:, :, names.index(base + "R")]
        np.testing.assert_allclose(left + right, e[:, :, names.index(base)], atol=1e-7)
    v0 = head.v_template.numpy()
    v = au(head, AU12L=1.0)
    moved_left = np.linalg.norm(v[291] - v0[291])
    moved_right = np.linalg.norm(v[61] - v0[61])
    assert moved_left > 0.03 * W and moved_right < 0.1 * moved_left


# --- AU semantics ---------------------------------------------------------------------------
def test_au12_raises_and_widens_lip_corners(head):
    v0, v = head.v_template.numpy(), au(head, AU12=1.0)
    for c in (61, 291):
        assert v[c, 1] - v0[c, 1] > 0.025 * W
    assert (v[291, 0] - v[61, 0]) - (v0[291, 0] - v0[61, 0]) > 0.03 * W
    move = np.linalg.norm(v[291] - v0[291]) / W
    assert 0.04 <= move <= 0.055


def test_au15_lowers_lip_corners(head):
    v0, v = head.v_template.numpy(), au(head, AU15=1.0)
    for c in (61, 291):
        assert v[c, 1] - v0[c, 1] < -0.03 * W


def test_brow_raisers(head):
    v0 = head.v_template.numpy()
    v1, v2, v12 = au(head, AU1=1.0), au(head, AU2=1.0), au(head, AU1=1.0, AU2=1.0)
    inner, outer = (107, 336), (70, 300)
    for i in inner:
        assert v1[i, 1] - v0[i, 1] > 0.05 * W
        assert v1[i, 1] - v0[i, 1] > 2 * (v2[i, 1] - v0[i, 1])
    for i in outer:
        assert v2[i, 1] - v0[i, 1] > 0.05 * W
    brows = list(oh.REGIONS["brow_l_upper"] + oh.REGIONS["brow_r_upper"])
    rise = (v12[brows, 1] - v0[brows, 1]).mean()
    assert 0.05 * W < rise < 0.09 * W


def test_au4_lowers_and_gathers_brows(head):
    v0, v = head.v_template.numpy(), au(head, AU4=1.0)
    assert -0.035 * W < v[336, 1] - v0[336, 1] < -0.015 * W
    assert v[336, 0] - v[107, 0] < v0[336, 0] - v0[107, 0]  # inner brows closer


def test_au43_closes_the_lids(head):
    v0, v = head.v_template.numpy(), au(head, AU43=1.0)
    for up_, lo in ((159, 145), (386, 374), (160, 144), (385, 380)):
        assert np.linalg.norm(v0[up_] - v0[lo]) > 0.04 * W
        assert np.linalg.norm(v[up_] - v[lo]) < 0.005 * W
    # the iris stays where the eye is
    np.testing.assert_allclose(v[468:478], v0[468:478], atol=1e-9)


def test_au5_raises_upper_lid(head):
    v0, v = head.v_template.numpy(), au(head, AU5=1.0)
    assert 0.015 * W < v[386, 1] - v0[386, 1] < 0.03 * W
    assert abs(v[374, 1] - v0[374, 1]) < 0.003 * W


def test_lips_closed_at_neutral_and_parted_by_au25_and_jaw(head):
    v0 = head.v_template.numpy()
    assert np.linalg.norm(v0[13] - v0[14]) < 0.01 * W
    v25 = au(head, AU25=1.0)
    assert v25[13, 1] - v25[14, 1] > 0.03 * W
    vj = head(pose=pose_jaw(oh.JAW_RAD_PER_AU26)).vertices.numpy()
    assert vj[13, 1] - vj[14, 1] > 0.08 * W
    drop = v0[152, 1] - vj[152, 1]
    assert 0.09 * W < drop < 0.15 * W  # jaw drop ~0.12 W at the chin
    # the forehead and the nose do not move with the jaw
    np.testing.assert_allclose(vj[10], v0[10], atol=1e-9)  # the skull stays
    assert np.linalg.norm(vj[1] - v0[1]) < 0.001 * W  # the nose tip (the lip corrective's fringe)
    assert np.linalg.norm(vj[13] - v0[13]) < 0.005 * W  # the upper lip barely moves
    # the jaw corrective narrows the opening mouth (an oval, not a wide slot)
    assert vj[291, 0] - vj[61, 0] < v0[291, 0] - v0[61, 0] - 0.02 * W


def test_jaw_pose_sign_and_helpers():
    np.testing.assert_allclose(oh.au26_to_jaw_pose(1.0), [oh.JAW_RAD_PER_AU26, 0, 0])
    assert oh.JAW_RAD_PER_AU26 > 0
    t = oh.au26_to_jaw_pose(torch.tensor([0.0, 0.5]))
    assert isinstance(t, torch.Tensor) and t.shape == (2, 3)


def test_emotion_prototypes(head):
    assert set(oh.EMOTION_PROTOTYPES) == {
        "neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt"
    }  # fmt: skip
    e, j = oh.prototype_params("neutral", head)
    assert not e.any() and not j.any()
    e, j = oh.prototype_params("happiness", head)
    names = head.expression_names
    assert e[names.index("AU12")] > 0 and e[names.index("AU6")] > 0 and j[0] == 0
    e, j = oh.prototype_params("Surprise", head)
    assert j[0] > 0 and e[names.index("AU1")] > 0
    e, _ = oh.prototype_params("contempt", head)
    assert e[names.index("AU12L")] > 0 and e[names.index("AU12R")] == 0
    with pytest.raises(InputError):
        oh.prototype_params("boredom", head)
    with pytest.raises(InputError):
        oh.au_params({"AU99": 1.0}, head)
    v = head(expression=torch.as_tensor(oh.prototype_params("sadness", head)[0], dtype=torch.float64)).vertices
    assert v[291, 1] < head.v_template[291, 1]


# --- identity -------------------------------------------------------------------------------
def test_identity_directions_are_plausible_and_symmetric(head, npz):
    m = npz["mirror_index"]
    s = head.shapedirs.numpy()
    v0 = head.v_template.numpy()
    for k, name in enumerate(head.shape_names):
        d = s[:478, :, k]
        peak = np.linalg.norm(d, axis=1).max()
        assert 0.001 < peak < 0.008, name  # ~1 SD: a few millimetres
        assert np.abs(d - d[m] * [-1, 1, 1]).max() < 1e-6, name
    face_w = lambda v: np.linalg.norm(v[234] - v[454])  # noqa: E731
    i = head.shape_names.index("face_width")
    coeff = torch.zeros(head.num_shape, dtype=torch.float64)
    coeff[i] = 1.0
    v = head(shape=coeff).vertices.numpy()
    assert face_w(v) > face_w(v0) + 0.002
    # joints follow identity (eye joints move with eye spacing)
    j = head.shape_names.index("eye_spacing")
    coeff = torch.zeros(head.num_shape, dtype=torch.float64)
    coeff[j] = 2.0
    out0, out1 = head(), head(shape=coeff)
    assert out1.joints[3, 0] > out0.joints[3, 0] + 0.001


def test_joints_and_skinning(head):
    out = head()
    j = out.joints.numpy()
    v = head.v_template.numpy()
    # eyes 12 mm behind the iris centres, jaw behind and below, head centre behind the face
    np.testing.assert_allclose(j[3], v[473] - [0, 0, 0.012], atol=1e-6)
    np.testing.assert_allclose(j[4], v[468] - [0, 0, 0.012], atol=1e-6)
    assert j[2, 2] < v[234, 2] and j[2, 1] < v[1, 1]
    assert j[0, 2] < v[1, 2] - 0.05 and j[1, 1] < j[0, 1]
    w = head.lbs_weights.numpy()
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    assert w[152, 2] > 0.99 and w[14, 2] > 0.99 and w[17, 2] > 0.99  # chin, lower lip -> jaw
    assert w[13, 2] < 0.01 and w[1, 2] < 0.01 and w[10, 2] < 0.01  # upper lip, nose, forehead
    assert 0.2 < w[61, 2] < 0.8  # mouth corners blend
    assert w[473, 3] == 1.0 and w[468, 4] == 1.0  # irises ride the eye joints
    # eye rotation moves the iris, not the lids
    p = torch.zeros(15, dtype=torch.float64)
    p[10] = 0.3  # left eye yaw
    vr = head(pose=p).vertices.numpy()
    assert np.linalg.norm(vr[473] - v[473]) > 0.002
    np.testing.assert_allclose(vr[386], v[386], atol=1e-12)


def test_prototypes_do_not_fold_the_skin(head):
    """Front-facing skin triangles keep their orientation in every prototype (the two slivers
    in the lip commissure crease excepted)."""
    f = head.faces
    v0 = head.v_template.numpy()

    def normals(v):
        n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    n0 = normals(v0)
    front = n0[:, 2] > 0.3
    for name in oh.EMOTION_PROTOTYPES:
        v = au(head, **oh.EMOTION_PROTOTYPES[name])
        flipped = ((normals(v) * n0).sum(1) < 0) & front
        assert flipped.sum() <= 2, (name, f[flipped].tolist())
