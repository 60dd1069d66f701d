import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from flame_transit.errors import InputError
from flame_transit.params import FaceParams
from flame_transit.trajectory import MAX_FRAMES, Anchors, Trajectory, build_trajectory, timing_curve

E = 5


def subject(expression=None, pose=None, **kw):
    g = torch.Generator().manual_seed(0)
    return FaceParams(
        shape=torch.randn(7, generator=g),
        expression=torch.zeros(E) if expression is None else torch.as_tensor(expression, dtype=torch.float32),
        pose=(0.1 * torch.randn(15, generator=g)) if pose is None else torch.as_tensor(pose, dtype=torch.float32),
        cam=torch.tensor([5.0, 0.01, -0.02]),
        head_name=kw.pop("head_name", "test-head"),
        offsets=torch.full((4, 3), 0.001),
        crop_to_image=torch.eye(2, 3, dtype=torch.float64),
        **kw,
    )


def anchors(k=2, seed=1, eye=False, **kw):
    rng = np.random.default_rng(seed)
    return Anchors(
        expression=rng.normal(size=(k, E)),
        jaw_pose=np.c_[rng.uniform(0, 0.4, k), rng.normal(scale=0.05, size=(k, 2))],
        labels=[f"emo{i}" for i in range(k)],
        eye_pose=rng.normal(scale=0.1, size=(k, 6)) if eye else None,
        **kw,
    )


def test_frame_count_and_anchor_frames():
    traj = build_trajectory(subject(), anchors(3), fps=10, duration=1.5, hold=0.2)
    # 1 + 2 segments * 15 + 3 keyframes * 2 held frames
    assert traj.num_frames == 1 + 2 * 15 + 3 * 2 == len(traj)
    assert traj.anchor_frames == [0, 2 + 15, 2 + 15 + 2 + 15]
    assert traj.labels == ["emo0", "emo1", "emo2"] and traj.kinds == ["anchor"] * 3
    assert traj.params.expression.shape == (traj.num_frames, E)
    assert traj.params.pose.shape == (traj.num_frames, 15)
    assert traj.params.cam.shape == (traj.num_frames, 3)
    assert traj.duration == pytest.approx(traj.num_frames / 10)
    np.testing.assert_allclose(traj.times, np.arange(traj.num_frames) / 10)


@pytest.mark.parametrize("timing", ["linear", "ease"])
def test_endpoints_and_keyframes_exact(timing):
    a = anchors(3, eye=True)
    traj = build_trajectory(subject(), a, fps=24, duration=0.7, timing=timing)
    p = traj.params
    for k, f in enumerate(traj.anchor_frames):
        assert torch.equal(p.expression[f], a.expression[k])
        assert torch.equal(p.jaw_pose[f], a.jaw_pose[k])
        assert torch.equal(p.pose[f, 9:15], a.eye_pose[k])
    assert traj.anchor_frames[0] == 0 and traj.anchor_frames[-1] == traj.num_frames - 1


def test_start_from_photo():
    s = subject(expression=torch.linspace(-1, 1, E))
    a = anchors(2)
    traj = build_trajectory(s, a, fps=10, duration=1, start="photo")
    assert traj.labels == ["photo", "emo0", "emo1"] and traj.kinds[0] == "photo"
    assert torch.equal(traj.params.expression[0], s.expression)
    assert torch.equal(traj.params.pose[0], s.pose)
    assert torch.equal(traj.params.expression[-1], a.expression[-1])
    assert traj.num_frames == 21


def test_linear_is_paper_eq16():
    a = anchors(2)
    n = 8
    traj = build_trajectory(subject(), a, fps=8, duration=1.0)
    ea, eb = a.expression[0].double(), a.expression[1].double()
    for t in range(n + 1):
        want = (1 - t / n) * ea + (t / n) * eb
        torch.testing.assert_close(traj.params.expression[t].double(), want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("timing", ["linear", "ease"])
def test_blend_is_monotone_between_anchors(timing):
    a = anchors(3)
    traj = build_trajectory(subject(), a, fps=30, duration=0.5, hold=0.1, timing=timing)
    ex = traj.params.expression.double().numpy()
    for k in range(1, 3):
        seg = ex[traj.anchor_frames[k - 1]: traj.anchor_frames[k] + 1]
        sign = np.sign(a.expression[k].double().numpy() - a.expression[k - 1].double().numpy())
        steps = np.diff(seg, axis=0) * sign
        assert (steps >= -1e-7).all()
        # every coordinate stays between its two anchor values
        lo = np.minimum(a.expression[k - 1].numpy(), a.expression[k].numpy()) - 1e-6
        hi = np.maximum(a.expression[k - 1].numpy(), a.expression[k].numpy()) + 1e-6
        assert ((seg >= lo) & (seg <= hi)).all()
    blend_in_segments = [traj.blend[traj.segment == k] for k in range(1, 3)]
    for b in blend_in_segments:
        assert (np.diff(b) >= 0).all() and b[-1] == 1.0 and 0 < b[0] < 1


def test_jaw_is_slerped_half_angle_at_middle():
    theta = 0.5
    a = Anchors(expression=np.zeros((2, E)), jaw_pose=[[0.0, 0.0, 0.0], [theta, 0.0, 0.0]], labels=["a", "b"])
    traj = build_trajectory(subject(), a, fps=10, duration=1.0)  # 10 frames: frame 5 is the middle
    mid = traj.params.jaw_pose[5].double().numpy()
    assert np.linalg.norm(mid) == pytest.approx(theta / 2, abs=1e-6)
    np.testing.assert_allclose(mid, [theta / 2, 0, 0], atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-1.2, 1.2), min_size=3, max_size=3),
    st.lists(st.floats(-1.2, 1.2), min_size=3, max_size=3),
)
def test_slerp_geodesic_midpoint(ra, rb):
    """Mid frame rotation is equidistant (half the geodesic angle) from both ends; this is not
    what averaging axis-angle numbers gives in general."""
    a = Anchors(expression=np.zeros((2, E)), jaw_pose=[ra, rb], labels=["a", "b"])
    traj = build_trajectory(subject(), a, fps=4, duration=1.0)  # frames 0..4, middle = 2
    r = Rotation.from_rotvec(traj.params.jaw_pose.double().numpy())
    total = (r[0].inv() * r[4]).magnitude()
    d0 = (r[0].inv() * r[2]).magnitude()
    d1 = (r[2].inv() * r[4]).magnitude()
    assert d0 == pytest.approx(total / 2, abs=1e-5)
    assert d1 == pytest.approx(total / 2, abs=1e-5)


def test_holds_are_constant_frames():
    traj = build_trajectory(subject(), anchors(2), fps=10, duration=0.5, hold=0.3)
    p = traj.params
    for f in traj.anchor_frames:
        for j in range(1, 4):
            assert torch.equal(p.expression[f], p.expression[f + j])
            assert torch.equal(p.pose[f], p.pose[f + j])
    # no hold inside a transition: consecutive frames differ there
    assert not torch.equal(p.expression[4], p.expression[5])


def test_ease_has_zero_velocity_at_ends():
    u = np.array([0.0, 1e-4, 1 - 1e-4, 1.0])
    w = timing_curve(u, "ease")
    assert (w[1] - w[0]) / 1e-4 < 1e-3 and (w[3] - w[2]) / 1e-4 < 1e-3
    assert timing_curve(np.array([0.5]), "ease")[0] == pytest.approx(0.5)
    # in a clip: first and last steps of a segment are much smaller than the middle step
    a = anchors(2)
    ease = build_trajectory(subject(), a, fps=60, duration=1.0, timing="ease").params.expression.double()
    lin = build_trajectory(subject(), a, fps=60, duration=1.0, timing="linear").params.expression.double()
    step = lambda x, i: float((x[i + 1] - x[i]).norm())
    assert step(ease, 0) < 0.1 * step(lin, 0)
    assert step(ease, 59) < 0.1 * step(lin, 59)
    assert step(ease, 30) > step(lin, 30)  # it catches up in the middle


def test_through_neutral_passes_through_neutral_at_middle():
    a = anchors(2)
    traj = build_trajectory(subject(), a, fps=10, duration=1.0, through_neutral=True)
    assert traj.labels == ["emo0", "neutral", "emo1"] and traj.kinds == ["anchor", "neutral", "anchor"]
    mid = traj.anchor_frames[1]
    assert mid == (traj.num_frames - 1) // 2
    assert torch.count_nonzero(traj.params.expression[mid]) == 0
    assert torch.count_nonzero(traj.params.jaw_pose[mid]) == 0
    assert torch.equal(traj.params.expression[-1], a.expression[1])


def test_given_neutral_one_per_gap_and_shared():
    a = anchors(3)
    ned = Anchors(expression=np.full((1, E), 0.1), jaw_pose=[[0.05, 0, 0]], labels=["ned"])
    traj = build_trajectory(subject(), a, fps=5, duration=1.0, neutral=ned)  # through_neutral implied
    assert traj.labels == ["emo0", "ned", "emo1", "ned", "emo2"]
    for f in traj.anchor_frames[1::2]:
        torch.testing.assert_close(traj.params.expression[f], ned.expression[0])
    two = Anchors(expression=np.stack([np.full(E, 0.1), np.full(E, -0.1)]), jaw_pose=np.zeros((2, 3)), labels=["n1", "n2"])
    traj = build_trajectory(subject(), a, fps=5, duration=1.0, neutral=two)
    assert traj.labels == ["emo0", "n1", "emo1", "n2", "emo2"]
    traj = build_trajectory(subject(), a, fps=5, duration=1.0, neutral=ned, through_neutral=False)
    assert "ned" not in traj.labels
    with pytest.raises(InputError, match="one per gap"):
        build_trajectory(subject(), anchors(4), fps=5, duration=1.0, neutral=two)
    # from NED-style FaceParams
    n = Anchors.from_params(subject().neutral(), "neutral")
    assert len(n) == 1 and n.labels == ["neutral"]


def test_identity_camera_and_head_pose_held_fixed():
    s = subject()
    traj = build_trajectory(s, anchors(2), fps=10, duration=1.0)
    p = traj.params
    assert torch.equal(p.shape, s.shape) and p.shape.ndim == 1
    assert torch.equal(p.offsets, s.offsets)
    assert torch.equal(p.crop_to_image, s.crop_to_image)
    assert (p.cam == s.cam).all()
    assert (p.pose[:, :6] == s.pose[:6]).all()  # global + neck
    assert (p.pose[:, 9:] == s.pose[9:]).all()  # eyes: anchors have none -> the photo's
    assert p.head_name == "test-head"


def test_single_anchor_gives_a_still():
    traj = build_trajectory(subject(), anchors(1), fps=10, duration=0.5)
    assert traj.num_frames == 6 and traj.anchor_frames == [0]
    assert (traj.params.expression == traj.params.expression[0]).all()


def test_frame_accessor_and_head_forward():
    from flame_transit.head import Head, HeadAssets

    rng = np.random.default_rng(0)
    v = 4
    assets = HeadAssets(
        name="tiny", kind="flame", v_template=rng.normal(size=(v, 3)), faces=np.array([[0, 1, 2], [0, 2, 3]]),
        shapedirs=rng.normal(size=(v, 3, 7)), exprdirs=rng.normal(size=(v, 3, E)), posedirs=np.zeros((v, 3, 36)),
        j_regressor=np.full((5, v), 1 / v), lbs_weights=np.eye(v, 5),
    )
    traj = build_trajectory(subject(), anchors(2), fps=10, duration=0.5)
    out = Head(assets)(shape=traj.params.shape, expression=traj.params.expression, pose=traj.params.pose,
                       offsets=traj.params.offsets)
    assert out.vertices.shape == (traj.num_frames, v, 3)
    f = traj.frame(-1)
    assert f.expression.shape == (E,) and f.pose.shape == (15,) and f.cam.shape == (3,)
    with pytest.raises(InputError):
        traj.frame(traj.num_frames)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fps=0), "fps"),
        (dict(fps=-30), "fps"),
        (dict(fps=float("nan")), "fps"),
        (dict(fps=float("inf")), "fps"),
        (dict(fps=True), "fps"),
        (dict(fps="30"), "fps"),
        (dict(fps=5000), "fps"),
        (dict(duration=0), "duration"),
        (dict(duration=-1.0), "duration"),
        (dict(duration=float("nan")), "duration"),
        (dict(hold=-0.5), "hold"),
        (dict(hold=float("inf")), "hold"),
        (dict(timing="cubic"), "timing"),
        (dict(start="middle"), "start"),
        (dict(fps=240, duration=50.0), "limit"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(InputError, match=match):
        build_trajectory(subject(), anchors(2), **kwargs)


def test_bad_anchors_and_subject():
    with pytest.raises(InputError, match="NaN"):
        Anchors(expression=[[float("nan")] * E], jaw_pose=[[0, 0, 0]])
    with pytest.raises(InputError, match="jaw_pose"):
        Anchors(expression=np.zeros((2, E)), jaw_pose=np.zeros((2, 6)))
    with pytest.raises(InputError, match="labels"):
        Anchors(expression=np.zeros((2, E)), jaw_pose=np.zeros((2, 3)), labels=["one"])
    with pytest.raises(InputError, match="eye_pose"):
        Anchors(expression=np.zeros((2, E)), jaw_pose=np.zeros((2, 3)), eye_pose=np.zeros((2, 3)))
    with pytest.raises(InputError, match="same head"):
        build_trajectory(subject(expression=torch.zeros(E + 1)), anchors(2), start="photo")
    with pytest.raises(InputError, match="head"):
        build_trajectory(subject(), anchors(2, head_name="other-head"))
    batch = subject().replace(expression=torch.zeros(3, E), pose=torch.zeros(3, 15))
    with pytest.raises(InputError, match="one face"):
        build_trajectory(batch, anchors(2))
    with pytest.raises(InputError, match="NaN"):
        build_trajectory(subject(pose=torch.full((15,), float("nan"))), anchors(2))
    with pytest.raises(InputError, match="Anchors"):
        build_trajectory(subject(), {"expression": np.zeros((2, E))})


@settings(max_examples=40, deadline=None)
@given(
    fps=st.floats(1.0, 120, allow_nan=False),
    duration=st.floats(0.01, 3.0, allow_nan=False),
    hold=st.floats(0.0, 1.0, allow_nan=False),
    k=st.integers(1, 4),
    timing=st.sampled_from(["linear", "ease"]),
    start=st.sampled_from(["first", "photo"]),
    neutral=st.booleans(),
)
def test_any_valid_options_give_consistent_clip(fps, duration, hold, k, timing, start, neutral):
    s = subject(expression=np.linspace(0, 1, E))
    a = anchors(k, seed=k)
    traj = build_trajectory(s, a, fps=fps, duration=duration, hold=hold, timing=timing, start=start,
                            through_neutral=neutral)
    assert isinstance(traj, Trajectory)
    keys = len(traj.labels)
    n_seg, n_hold = max(1, round(duration * fps)), round(hold * fps)
    segments = keys - 1 if keys > 1 else 1
    assert traj.num_frames == 1 + segments * n_seg + keys * n_hold
    assert traj.anchor_frames[0] == 0 and traj.anchor_frames == sorted(set(traj.anchor_frames))
    assert traj.anchor_frames[-1] <= traj.num_frames - 1
    assert torch.equal(traj.params.expression[-1], a.expression[-1])
    first = s.expression if start == "photo" else a.expression[0]
    assert torch.equal(traj.params.expression[0], first)
    assert torch.isfinite(traj.params.expression).all() and torch.isfinite(traj.params.pose).all()
    assert ((traj.blend >= 0) & (traj.blend <= 1)).all()
    # expression never leaves the box spanned by the keyframes (convex blend)
    lo = torch.minimum(a.expression.min(0).values, first).min() - 1e-5
    hi = torch.maximum(a.expression.max(0).values, first).max() + 1e-5
    assert (traj.params.expression >= min(lo, 0) - 1e-5).all() and (traj.params.expression <= max(hi, 0) + 1e-5).all()


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (0 < x <= 1000)),
                 st.none(), st.text(max_size=3), st.booleans()))
def test_any_invalid_fps_is_a_clear_error(fps):
    with pytest.raises(InputError, match="fps"):
        build_trajectory(subject(), anchors(2), fps=fps)


def test_limit_constant_is_enforced_exactly():
    fps = 100.0
    ok = (MAX_FRAMES - 1) / fps  # one segment of MAX_FRAMES - 1 frames -> MAX_FRAMES frames
    traj = build_trajectory(subject(), anchors(2), fps=fps, duration=ok)
    assert traj.num_frames == MAX_FRAMES
    with pytest.raises(InputError, match="limit"):
        build_trajectory(subject(), anchors(2), fps=fps, duration=ok + 1 / fps)
    assert math.isclose(traj.duration, MAX_FRAMES / fps)
