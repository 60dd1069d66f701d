"""ARKit blendshape curves from a clip's action-unit trajectory.

Apple ARKit's 52 blendshapes (:data:`ARKIT_NAMES`, Apple's names and order) are the common
expression rig of avatar tools (Live Link Face, Unity, Ready Player Me, VRM "perfect sync").
flame_transit derives them from the clip's **action-unit (AU) trajectory**, whatever the head:

* the open head's expression coordinates *are* FACS AUs, and AU26 (jaw drop) is its jaw
  rotation (:data:`~flame_transit.head.open_head.JAW_RAD_PER_AU26` rad per unit);
* a clip on another head (FLAME) carries its AU coordinates on the trajectory
  (``Trajectory.au``, ``Trajectory.au_names``: the anchors' AU codes, interpolated with the
  same weights as the expression); a clip without them cannot be mapped and raises
  :class:`~flame_transit.errors.InputError`.

The mapping is one table, :data:`AU_TO_ARKIT`: each AU feeds one or two ARKit shapes with a
weight (bilateral AUs feed both the ``Left`` and the ``Right`` shape; the unilateral AU12L/R and
AU14L/R one side). ARKit's "Left" is the subject's left (+X), as in flame_transit. The curve of
shape ``k`` is

``arkit[t, k] = clip(sum_a  W[a, k] * au[t, a] / ARKIT_FULL_AU, 0, 1)``

with :data:`ARKIT_FULL_AU` = the AU intensity that counts as a shape's full (1.0) movement: the
open head's legibility gain (a generated expression at default intensity), so AU 2.0 = ARKit
1.0. Shapes no AU of the head drives (gaze, jaw sideways/forward, funnel, roll, cheek puff,
tongue, ...) stay 0; :data:`ARKIT_WITHOUT_AU` lists them with the reason. Gaze and head
rotation are written as angles next to the curves (:func:`head_eye_rotations`).

Example:
    >>> import numpy as np
    >>> au = np.zeros((1, len(AU_NAMES))); au[0, AU_NAMES.index("AU12")] = 2.0
    >>> curves = au_to_arkit(au, AU_NAMES)
    >>> float(curves[0, ARKIT_NAMES.index("mouthSmileLeft")]), float(curves[0, ARKIT_NAMES.index("jawOpen")])
    (1.0, 0.0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .errors import InputError
from .head.open_head import EXPRESSION_GAIN, EXPRESSION_NAMES, FACE_WIDTH_M, JAW_RAD_PER_AU26

__all__ = [
    "ARKIT_NAMES",
    "AU_NAMES",
    "AU_TO_ARKIT",
    "ARKIT_WITHOUT_AU",
    "ARKIT_FULL_AU",
    "ROTATION_NAMES",
    "LIVE_LINK_FACE_NAMES",
    "arkit_matrix",
    "au_to_arkit",
    "au_trajectory",
    "head_eye_rotations",
    "ARKIT_JOINT_SHAPES",
    "ARKIT_AVATAR_PATH",
    "arkit_recipes",
    "arkit_shapes",
]

#: the open head rigged with ARKit's 52 shapes (built by ``tools/build_arkit_avatar.py``)
ARKIT_AVATAR_PATH = Path(__file__).resolve().parent / "head" / "data" / "open_head_arkit.glb"

#: Apple ARKit's 52 blendshapes (``ARFaceAnchor.BlendShapeLocation``), in Apple's order: left
#: eye, right eye, mouth and jaw, eyebrows, cheeks, nose, tongue.
ARKIT_NAMES: Tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
    "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)  # fmt: skip

#: Live Link Face's CSV columns after ``Timecode`` and ``BlendShapeCount``: the 52 shapes in
#: PascalCase, in the app's order (it lists jawRight before jawLeft and mouthRight before
#: mouthLeft), then :data:`ROTATION_NAMES`.
LIVE_LINK_FACE_NAMES: Tuple[str, ...] = tuple(
    n[0].upper() + n[1:]
    for n in ARKIT_NAMES[:15] + ("jawRight", "jawLeft") + ARKIT_NAMES[17:21] + ("mouthRight", "mouthLeft")
    + ARKIT_NAMES[23:]
)
#: head and eye rotations written after the 52 curves (radians; see :func:`head_eye_rotations`)
ROTATION_NAMES: Tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip

#: The AU space: the open head's expression coordinates, then AU26 (its jaw).
AU_NAMES: Tuple[str, ...] = tuple(EXPRESSION_NAMES) + ("AU26",)

#: AU intensity that drives an ARKit shape to 1.0 (the open head's legibility gain: an emotion
#: generated at default intensity carries its AUs at about this level).
ARKIT_FULL_AU = float(EXPRESSION_GAIN)

_B = ("Left", "Right")  # bilateral: one shape per side


def _both(stem: str, weight: float = 1.0) -> Tuple[Tuple[str, float], ...]:
    return tuple((stem + side, weight) for side in _B)


#: AU -> ((ARKit shape, weight), ...). FACS names after Ekman & Friesen.
AU_TO_ARKIT: Dict[str, Tuple[Tuple[str, float], ...]] = {
    "AU1": (("browInnerUp", 1.0),),                                   # inner brow raiser
    "AU2": _both("browOuterUp"),                                      # outer brow raiser
    "AU4": _both("browDown"),                                         # brow lowerer
    "AU5": _both("eyeWide"),                                          # upper lid raiser
    "AU6": _both("cheekSquint"),                                      # cheek raiser
    "AU7": _both("eyeSquint"),                                        # lid tightener
    "AU9": _both("noseSneer"),                                        # nose wrinkler
    "AU10": _both("mouthUpperUp"),                                    # upper lip raiser
    "AU12": _both("mouthSmile"),                                      # lip corner puller
    "AU12L": (("mouthSmileLeft", 1.0),),
    "AU12R": (("mouthSmileRight", 1.0),),
    "AU14": _both("mouthDimple"),                                     # dimpler
    "AU14L": (("mouthDimpleLeft", 1.0),),
    "AU14R": (("mouthDimpleRight", 1.0),),
    "AU15": _both("mouthFrown"),                                      # lip corner depressor
    "AU16": _both("mouthLowerDown"),                                  # lower lip depressor
    "AU17": (("mouthShrugLower", 1.0), ("mouthShrugUpper", 0.5)),     # chin raiser
    "AU20": _both("mouthStretch"),                                    # lip stretcher
    "AU23": (("mouthPucker", 0.5),) + _both("mouthPress", 0.5),       # lip tightener
    "AU24": _both("mouthPress"),                                      # lip pressor
    "AU25": _both("mouthLowerDown", 0.5),                             # lips part
    "AU26": (("jawOpen", 1.0),),                                      # jaw drop
    "AU43": _both("eyeBlink"),                                        # eyes closed
}  # fmt: skip

#: ARKit shapes that no AU of the AU space drives (always 0 in the curves), with why.
ARKIT_WITHOUT_AU: Dict[str, str] = {
    **{f"eyeLook{d}{s}": "gaze: the eye rotations go to the LeftEye*/RightEye* angle columns"
       for s in _B for d in ("Down", "In", "Out", "Up")},
    "jawForward": "jaw thrust (AU29) is not in the AU space",
    "jawLeft": "sideways jaw (AU30) is not in the AU space",
    "jawRight": "sideways jaw (AU30) is not in the AU space",
    "mouthClose": "lips closed over an open jaw: no AU; AU25 without AU26 parts the lips instead",
    "mouthFunnel": "lip funneler (AU22) is not in the AU space",
    "mouthLeft": "sideways mouth: no FACS AU",
    "mouthRight": "sideways mouth: no FACS AU",
    "mouthRollLower": "lip suck (AU28) is not in the AU space",
    "mouthRollUpper": "lip suck (AU28) is not in the AU space",
    "cheekPuff": "cheek puff (AD34) is not in the AU space",
    "tongueOut": "tongue show (AD19) is not in the AU space",
}


def arkit_matrix(au_names: Sequence[str]) -> np.ndarray:
    """``(A, 52)`` weights of :data:`AU_TO_ARKIT` for the AU coordinates ``au_names``
    (unknown names get a zero row).

    Example:
        >>> m = arkit_matrix(["AU4", "AU99"])
        >>> m.shape, float(m[0].sum()), float(m[1].sum())
        ((2, 52), 2.0, 0.0)
    """
    index = {n: k for k, n in enumerate(ARKIT_NAMES)}
    m = np.zeros((len(au_names), len(ARKIT_NAMES)))
    for a, name in enumerate(au_names):
        for shape, weight in AU_TO_ARKIT.get(str(name).upper(), ()):
            m[a, index[shape]] += weight
    return m


def au_to_arkit(au: Any, au_names: Sequence[str]) -> np.ndarray:
    """ARKit curves ``(T, 52)`` float32 in ``[0, 1]`` from AU intensities ``(T, A)``.

    Args:
        au: ``(T, A)`` (or ``(A,)``) AU intensities, 1.0 = a strong activation of the head's
            authored field; negative values count as 0.
        au_names: the A names (e.g. :data:`AU_NAMES`).
    """
    a = np.asarray(au, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != len(au_names):
        raise InputError(f"AU trajectory must be (T, {len(au_names)}) for {len(au_names)} AU names, got {a.shape}")
    if not np.isfinite(a).all():
        raise InputError("the AU trajectory contains NaN or infinite values")
    w = np.clip(a, 0.0, None) @ arkit_matrix(au_names) / ARKIT_FULL_AU
    return np.clip(w, 0.0, 1.0).astype(np.float32)


def _is_au_head(head: Any) -> bool:
    names = tuple(getattr(head, "expression_names", ()) or ())
    return bool(names) and all(str(n).upper().startswith("AU") for n in names)


def au_trajectory(trajectory: Any, head: Any) -> Tuple[np.ndarray, Tuple[str, ...]]:
    """A clip's AU coordinates over time: ``(au (T, A) float32, names)``.

    The trajectory's own ``au`` when it carries one (clips on FLAME heads made through the AU
    space); else, on a head whose expression coordinates are AUs (the open head), the
    expression columns plus AU26 read back from the jaw's opening rotation.

    Raises:
        InputError: the clip has no AU coordinates (a head whose expression is not in AUs and a
            trajectory without ``au``).
    """
    au = getattr(trajectory, "au", None)
    if au is not None:
        names = tuple(str(n) for n in getattr(trajectory, "au_names", ()))
        arr = np.asarray(au.detach().cpu().numpy() if hasattr(au, "detach") else au, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise InputError(f"trajectory.au must be (T, {len(names)}) for its au_names, got {arr.shape}")
        return arr, names
    if not _is_au_head(head):
        raise InputError(
            f"this clip has no action-unit trajectory: head {getattr(head, 'name', '?')!r} has no AU "
            "expression coordinates and the trajectory carries no `au` (make the clip through the AU "
            "space: the open head, or a FLAME head whose anchors carry their AU codes)"
        )
    params = getattr(trajectory, "params", trajectory)  # a Trajectory or per-frame FaceParams
    expr = params.expression.detach().cpu().reshape(-1, params.expression.shape[-1]).numpy()
    jaw_open = params.pose.detach().cpu().reshape(-1, 15)[:, 6].numpy() / JAW_RAD_PER_AU26
    names = tuple(str(n) for n in head.expression_names) + ("AU26",)
    return np.concatenate([expr, jaw_open[:, None]], 1).astype(np.float32), names


def head_eye_rotations(pose: Any) -> np.ndarray:
    """``(T, 9)`` radians in :data:`ROTATION_NAMES` order from FLAME-layout poses ``(T, 15)``.

    Head = global then neck rotation; each rotation is split into intrinsic Euler angles
    yaw (about +Y, up), pitch (about +X, the subject's left), roll (about +Z, towards the viewer)
    -- scipy's ``"YXZ"`` sequence. A positive yaw turns the face towards the subject's left, a
    positive pitch tips it down.

    Example:
        >>> p = np.zeros((1, 15)); p[0, 1] = 0.1       # global yaw 0.1 rad
        >>> [round(float(x), 6) for x in head_eye_rotations(p)[0, :3]]
        [0.1, 0.0, 0.0]
    """
    from scipy.spatial.transform import Rotation

    p = np.asarray(pose.detach().cpu().numpy() if hasattr(pose, "detach") else pose, dtype=np.float64).reshape(-1, 15)
    head = Rotation.from_rotvec(p[:, 0:3]) * Rotation.from_rotvec(p[:, 3:6])
    parts = [head, Rotation.from_rotvec(p[:, 9:12]), Rotation.from_rotvec(p[:, 12:15])]
    return np.concatenate([r.as_euler("YXZ") for r in parts], 1).astype(np.float32)


_EYE_RAD = 0.35  # eyeLook* at 1.0: 20 degrees
_JAW_SIDE_RAD = 0.12  # jawLeft/Right at 1.0: 7 degrees
#: ARKit shapes the avatar makes from joint rotations (no AU): pose slice start, axis-angle.
#: Eyes: a positive turn about +Y looks to the subject's left, about +X down.
ARKIT_JOINT_SHAPES: Dict[str, Tuple[int, Tuple[float, float, float]]] = {
    "eyeLookOutLeft": (9, (0.0, _EYE_RAD, 0.0)), "eyeLookInLeft": (9, (0.0, -_EYE_RAD, 0.0)),
    "eyeLookUpLeft": (9, (-_EYE_RAD, 0.0, 0.0)), "eyeLookDownLeft": (9, (_EYE_RAD, 0.0, 0.0)),
    "eyeLookOutRight": (12, (0.0, -_EYE_RAD, 0.0)), "eyeLookInRight": (12, (0.0, _EYE_RAD, 0.0)),
    "eyeLookUpRight": (12, (-_EYE_RAD, 0.0, 0.0)), "eyeLookDownRight": (12, (_EYE_RAD, 0.0, 0.0)),
    "jawLeft": (6, (0.0, _JAW_SIDE_RAD, 0.0)), "jawRight": (6, (0.0, -_JAW_SIDE_RAD, 0.0)),
}  # fmt: skip


def arkit_recipes() -> Dict[str, Tuple[str, float, Optional[str]]]:
    """How the avatar builds each AU-driven ARKit shape: ``shape -> (AU, intensity, side)``.

    Each AU lends its geometry to its *primary* shapes (its largest weights in
    :data:`AU_TO_ARKIT`); a shape takes the AU with the largest weight among those (a one-sided
    AU first), at the intensity whose curve value is 1.0 (``ARKIT_FULL_AU / weight``), cut to one
    side (``"Left"``/``"Right"``: a smooth mask at the midline) when a two-sided AU feeds a sided
    shape. Driving the avatar with :func:`au_to_arkit`'s curves then rebuilds each AU's geometry
    once (a secondary feed such as AU17 -> mouthShrugUpper adds none).

    Example:
        >>> r = arkit_recipes()
        >>> r["browDownLeft"], r["mouthSmileRight"], "mouthShrugUpper" in r
        (('AU4', 2.0, 'Left'), ('AU12R', 2.0, None), False)
    """
    best: Dict[str, Tuple[float, int, str]] = {}
    for au, pairs in AU_TO_ARKIT.items():
        top = max(w for _, w in pairs)
        for shape, w in pairs:
            if w == top:
                key = (w, int(au.endswith(("L", "R"))), au)
                best[shape] = max(best.get(shape, key), key)
    out = {}
    for shape, (w, sided, au) in best.items():
        side = next((s for s in _B if shape.endswith(s)), None) if not sided else None
        out[shape] = (au, ARKIT_FULL_AU / w, side)
    return out


def arkit_shapes(head: Any, *, shape: Any = None, offsets: Any = None, pose: Any = None) -> Tuple[np.ndarray, np.ndarray]:
    """The 52 ARKit shapes on an AU head (the open head): ``(base (V, 3), deltas (52, V, 3))``
    float32 metres, in :data:`ARKIT_NAMES` order, shape ``k`` at curve value 1.0.

    AU-driven shapes follow :func:`arkit_recipes`; gaze and sideways jaw are joint rotations
    (:data:`ARKIT_JOINT_SHAPES`); jawOpen is the jaw at AU26 = :data:`ARKIT_FULL_AU`; the shapes
    of :data:`ARKIT_WITHOUT_AU` that no joint makes stay empty (all zeros). ``shape``,
    ``offsets`` and the rest ``pose`` ``(15,)`` (head, neck, eyes; its jaw is ignored) are the
    subject's (default: the template at rest).

    Raises:
        InputError: the head's expression coordinates are not AUs.
    """
    import torch

    if not _is_au_head(head):
        raise InputError(f"ARKit shapes are built from AU expression coordinates; head {getattr(head, 'name', '?')!r} has none")
    names = list(head.expression_names)
    e = len(names)
    recipes = arkit_recipes()
    rest = np.zeros(15) if pose is None else np.asarray(pose.detach().cpu() if hasattr(pose, "detach") else pose,
                                                         dtype=np.float64).reshape(15).copy()
    rest[6:9] = 0.0
    rows = [(np.zeros(e), rest)]  # the base
    for k in ARKIT_NAMES:
        expr, p = np.zeros(e), rest.copy()
        if k in recipes and recipes[k][0] == "AU26":
            p[6] = recipes[k][1] * JAW_RAD_PER_AU26
        elif k in recipes:
            expr[names.index(recipes[k][0])] = recipes[k][1]
        elif k in ARKIT_JOINT_SHAPES:
            start, rotvec = ARKIT_JOINT_SHAPES[k]
            p[start:start + 3] = rotvec
        rows.append((expr, p))
    with torch.no_grad():
        out = head(shape=shape, expression=torch.as_tensor(np.stack([r[0] for r in rows]), dtype=torch.float32),
                   pose=torch.as_tensor(np.stack([r[1] for r in rows]), dtype=torch.float32), offsets=offsets)
    v = out.vertices.detach().cpu().numpy().astype(np.float64)
    base, deltas = v[0], v[1:] - v[:1]
    left = 0.5 * (1.0 + np.tanh(base[:, 0] / (0.05 * FACE_WIDTH_M)))  # +X = the subject's left; AU12L's mask
    for k, name in enumerate(ARKIT_NAMES):
        side = recipes.get(name, (None, None, None))[2]
        if side is not None:
            deltas[k] *= (left if side == "Left" else 1.0 - left)[:, None]
    return base.astype(np.float32), deltas.astype(np.float32)
