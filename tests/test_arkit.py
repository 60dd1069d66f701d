"""ARKit curves: the mapping table, the AU trajectory, and what each emotion drives through the
real pipeline (animate on the example photo, many phrasings)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flame_transit import animate
from flame_transit.arkit import (
    ARKIT_NAMES,
    ARKIT_WITHOUT_AU,
    AU_NAMES,
    AU_TO_ARKIT,
    LIVE_LINK_FACE_NAMES,
    arkit_matrix,
    au_to_arkit,
    au_trajectory,
    head_eye_rotations,
)
from flame_transit.errors import InputError
from flame_transit.head.open_head import EMOTION_PROTOTYPES
from flame_transit.params import FaceParams
from flame_transit.text.templates import PAPER_TEMPLATES
from flame_transit.trajectory import Anchors, build_trajectory

PHOTO = Path(__file__).resolve().parent.parent / "examples" / "face.jpg"

#: what each emotion must drive (issue 14)
REQUIRED = {
    "happiness": ("mouthSmileLeft", "mouthSmileRight"),
    "surprise": ("jawOpen", "browInnerUp", "eyeWideLeft", "eyeWideRight"),
    "anger": ("browDownLeft", "browDownRight"),
    "disgust": ("noseSneerLeft", "noseSneerRight"),
    "sadness": ("mouthFrownLeft", "mouthFrownRight", "browInnerUp"),
}
SOURCES = ("neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt")


def test_apples_52_names_in_order_and_live_link_face_columns():
    assert len(ARKIT_NAMES) == 52 == len(set(ARKIT_NAMES))
    assert ARKIT_NAMES[:7] == ("eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft",
                               "eyeLookUpLeft", "eyeSquintLeft", "eyeWideLeft")
    assert ARKIT_NAMES[14:18] == ("jawForward", "jawLeft", "jawRight", "jawOpen") and ARKIT_NAMES[-1] == "tongueOut"
    assert sorted(n.lower() for n in LIVE_LINK_FACE_NAMES) == sorted(n.lower() for n in ARKIT_NAMES)
    assert LIVE_LINK_FACE_NAMES[15:17] == ("JawRight", "JawLeft")  # the app's own column order


def test_table_covers_every_shape_once_and_every_au():
    driven = {s for pairs in AU_TO_ARKIT.values() for s, _ in pairs}
    assert driven.isdisjoint(ARKIT_WITHOUT_AU)
    assert driven | set(ARKIT_WITHOUT_AU) == set(ARKIT_NAMES)
    assert set(AU_NAMES) == set(AU_TO_ARKIT)
    # bilateral AUs drive both sides equally; unilateral ones one side only
    m = arkit_matrix(AU_NAMES)
    for au in AU_NAMES:
        row = dict(zip(ARKIT_NAMES, m[AU_NAMES.index(au)]))
        for name, w in row.items():
            if name.endswith("Left") and not au.endswith(("L", "R")):
                assert row[name[:-4] + "Right"] == w, (au, name)
    left = au_to_arkit(np.eye(len(AU_NAMES))[AU_NAMES.index("AU12L")] * 2.0, AU_NAMES)[0]
    assert left[ARKIT_NAMES.index("mouthSmileLeft")] == 1.0 and left[ARKIT_NAMES.index("mouthSmileRight")] == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 10, allow_nan=False), min_size=len(AU_NAMES), max_size=len(AU_NAMES)))
def test_curves_stay_in_unit_range(values):
    w = au_to_arkit(np.array([values]), AU_NAMES)
    assert w.shape == (1, 52) and w.dtype == np.float32 and (w >= 0).all() and (w <= 1).all()


def test_bad_au_arrays_are_clear_errors():
    with pytest.raises(InputError, match=r"\(T, 23\)"):
        au_to_arkit(np.zeros((2, 5)), AU_NAMES)
    with pytest.raises(InputError, match="NaN"):
        au_to_arkit(np.full((1, len(AU_NAMES)), np.nan), AU_NAMES)


def test_head_rotation_signs():
    pose = np.zeros((3, 15))
    pose[0, 1] = 0.2  # global yaw: turn to the subject's left
    pose[1, 3] = 0.1  # neck pitch: nod down
    pose[2, 9:12] = [0.0, -0.3, 0.0]  # left eye looks to the subject's right
    r = head_eye_rotations(pose)
    np.testing.assert_allclose(r[0, :3], [0.2, 0, 0], atol=1e-6)
    np.testing.assert_allclose(r[1, :3], [0, 0.1, 0], atol=1e-6)
    np.testing.assert_allclose(r[2, 3:6], [-0.3, 0, 0], atol=1e-6)


def _flame_like_clip(with_au: bool):
    e = 7
    subject = FaceParams(shape=torch.zeros(4), expression=torch.zeros(e), pose=torch.zeros(15))
    au = torch.zeros(2, len(AU_NAMES))
    au[1, AU_NAMES.index("AU12")] = 2.0
    anchors = Anchors(expression=torch.randn(2, e, generator=torch.Generator().manual_seed(0)),
                      jaw_pose=torch.zeros(2, 3), labels=["neutral", "happiness"],
                      au=au if with_au else None, au_names=AU_NAMES if with_au else ())
    return build_trajectory(subject, anchors, fps=10, duration=1.0, through_neutral=True)


def test_flame_clip_gets_arkit_through_its_au_trajectory():
    class FlameLike:
        name, expression_names = "flame-like", tuple(f"exp{i:03d}" for i in range(7))

    traj = _flame_like_clip(with_au=True)
    au, names = au_trajectory(traj, FlameLike())
    assert names == AU_NAMES and au.shape == (traj.num_frames, len(AU_NAMES))
    smile = au_to_arkit(au, names)[:, ARKIT_NAMES.index("mouthSmileLeft")]
    assert smile[0] == 0 and smile[-1] == pytest.approx(1.0) and (np.diff(smile) >= -1e-6).all()
    # the AU path is interpolated with the expression's own blend weights
    last = traj.segment == traj.segment.max()
    smile_au = au[:, AU_NAMES.index("AU12")]
    np.testing.assert_allclose(smile_au[last] / 2.0, traj.blend[last], atol=1e-6)
    assert (smile_au[~last] == 0).all()
    with pytest.raises(InputError, match="no action-unit trajectory"):
        au_trajectory(_flame_like_clip(with_au=False), FlameLike())


# -- through the real pipeline ------------------------------------------------------------------

def _cases():
    """(instruction, target emotion, source or None): every paper template with every target,
    sources rotating through the other expressions, plus other phrasings."""
    cases = []
    for t, template in enumerate(PAPER_TEMPLATES):
        for k, target in enumerate(REQUIRED):
            others = [s for s in SOURCES if s != target]
            source = others[(t + 2 * k) % len(others)]
            cases.append((template.format(a=source, b=target), target, source))
    cases += [
        ("from neutral to happiness", "happiness", "neutral"),
        ("make her look joyful", "happiness", None),
        ("from furious to very surprised", "surprise", "anger"),
        ("astonished", "surprise", None),
        ("from sad to neutral, then livid", "anger", "neutral"),
        ("make this face grossed out", "disgust", None),
        ("happy -> disgusted", "disgust", "happiness"),
        ("Begin with a cheerful face and end with a gloomy one.", "sadness", "happiness"),
        ("from surprised to unhappy", "sadness", "surprise"),
    ]
    return cases


def _driven_by(emotion, shape):
    return any(dict(AU_TO_ARKIT[au]).get(shape, 0) > 0 for au in EMOTION_PROTOTYPES.get(emotion, {}))


@pytest.mark.parametrize("instruction, target, source", _cases())
def test_each_emotion_raises_its_shapes(instruction, target, source):
    anim = animate(str(PHOTO), instruction, fps=10, duration=0.5, hold=0.0, seed=0)
    curves = anim.arkit
    assert curves.shape == (anim.num_frames, 52) and (curves >= 0).all() and (curves <= 1).all()
    first = anim.anchor_frames[-2] if len(anim.anchor_frames) > 1 else 0  # the last transition's start
    for shape in REQUIRED[target]:
        k = ARKIT_NAMES.index(shape)
        assert curves[-1, k] >= 0.3, (instruction, shape, curves[-1, k])
        if source is not None and not _driven_by(source, shape):
            assert curves[first, k] < curves[-1, k] - 0.1, (instruction, shape, curves[first, k], curves[-1, k])


_FREE_FORM = ("smirk", "raise the eyebrows and open the mouth", "happy and surprised", "close the eyes",
              "from angry to neutral, then terrified", "anger -> neutral -> fear", "bittersweet", "😀")


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.builds(lambda t, a, adv, b: t.format(a=a, b=adv + b), st.sampled_from(PAPER_TEMPLATES), st.sampled_from(SOURCES),
              st.sampled_from(["", "slightly ", "very "]), st.sampled_from(SOURCES)),
    st.sampled_from(_FREE_FORM)))
def test_any_instruction_saves_52_unit_columns(tmp_path, instruction):
    from flame_transit.errors import InstructionError
    from flame_transit.export import load_arkit_curves

    try:
        anim = animate(None, instruction, fps=10, duration=0.3, hold=0.0)
    except InstructionError:  # words the vocabulary refuses are not this test's business
        return
    out = anim.save(tmp_path / "x.csv")
    curves = load_arkit_curves(out)
    assert curves.weights.shape == (anim.num_frames, 52)
    assert (curves.weights >= 0).all() and (curves.weights <= 1).all()
    np.testing.assert_allclose(curves.weights, anim.arkit, atol=1e-6)


def test_docs_table_is_the_code_table():
    """docs/ARKIT.md's mapping table lists exactly AU_TO_ARKIT."""
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "ARKIT.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (AU\w+) \| [^|]+ \| ([^|]+) \|$", text, flags=re.M))
    assert set(rows) == set(AU_TO_ARKIT)
    for au, cell in rows.items():
        documented = [(s, float(w)) for s, w in re.findall(r"(\w+) × ([\d.]+)", cell)]
        assert documented == list(AU_TO_ARKIT[au]), au
