"""Anchors → per-frame parameters: the expression trajectory of a clip.

The transit model turns an instruction into *anchors*: K expression codes with their jaw poses
(:class:`Anchors`). :func:`build_trajectory` combines them with the subject's identity and head
pose into a clip of T frames (:class:`Trajectory`).

Keyframes and segments:
    The clip visits a list of *keyframes* in order: the anchors, optionally preceded by the
    photo's own expression (``start="photo"``) and with a neutral face inserted between
    consecutive anchors (``through_neutral``: A → neutral → B, as in the paper's NED). Between
    two consecutive keyframes runs one *segment* (transition) of ``round(duration * fps)``
    frames; each keyframe is held for ``round(hold * fps)`` extra frames.

Interpolation (per segment, blend weight ``w`` from 0 to 1):
    * expression: linear, the paper's eq. 16, ``e_t = (1 - w) e_A + w e_B`` with ``w = t / n``
      (``timing="linear"``) or an eased ``w = 3u² - 2u³`` of ``u = t / n`` (``timing="ease"``:
      zero velocity at both ends of every segment);
    * jaw and eye poses: spherical linear interpolation of the rotations (not of the axis-angle
      numbers), shortest arc, with the same ``w``;
    * identity (shape, offsets), head/neck pose and camera are the subject's, fixed over the
      clip.

Keyframe frames reproduce the keyframe values exactly; the first frame is the first keyframe and
the last frame is the last anchor.

Example:
    >>> import torch
    >>> from flame_transit.params import FaceParams
    >>> subject = FaceParams(shape=torch.zeros(10), expression=torch.zeros(4), pose=torch.zeros(15))
    >>> anchors = Anchors(expression=torch.eye(4)[:2], jaw_pose=torch.zeros(2, 3), labels=["disgust", "happiness"])
    >>> traj = build_trajectory(subject, anchors, fps=10, duration=1.0)
    >>> traj.num_frames, traj.anchor_frames, traj.labels
    (11, [0, 10], ['disgust', 'happiness'])
    >>> traj.params.expression[5].tolist()
    [0.5, 0.5, 0.0, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .checks import MAX_FPS, MAX_FRAMES, check_fps, positive_number
from .errors import InputError
from .params import FaceParams

__all__ = [
    "TIMINGS",
    "check_timing",
    "Anchors",
    "Trajectory",
    "build_trajectory",
    "timing_curve",
    "DEFAULT_DURATION",
    "MAX_FRAMES",
    "MAX_FPS",
]

#: seconds per transition when ``duration`` is not given
DEFAULT_DURATION = 2.0

_ArrayLike = Union[torch.Tensor, np.ndarray, Sequence]

# pose layout (FLAME): global 0:3, neck 3:6, jaw 6:9, left eye 9:12, right eye 12:15
_JAW = slice(6, 9)
_EYES = slice(9, 15)


def _float_tensor(name: str, value: _ArrayLike) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if not t.is_floating_point():
            t = t.to(torch.float32)
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=torch.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} must be an array of numbers: {exc}") from exc
    if not torch.isfinite(t).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return t


@dataclass
class Anchors:
    """K anchor expressions of a transition, as produced by the transit model.

    Attributes:
        expression: ``(K, E)`` expression coefficients (a single ``(E,)`` row is accepted).
        jaw_pose: ``(K, 3)`` jaw axis-angle, radians.
        labels: K names, e.g. ``["disgust", "happiness"]`` (default ``anchor0``, ``anchor1``, ...).
        eye_pose: optional ``(K, 6)`` left then right eye axis-angle; ``None`` keeps the subject's
            eyes.
        head_name: id of the head model the codes belong to (checked against the subject's when
            both are set).
        au: optional ``(K, A)`` action-unit coordinates of the anchors (for heads whose
            expression is not in AUs, e.g. FLAME codes made from AU anchors); interpolated into
            :attr:`Trajectory.au`, from which ARKit curves are derived (:mod:`flame_transit.arkit`).
        au_names: the A names of ``au`` (e.g. :data:`flame_transit.arkit.AU_NAMES`).

    Example:
        >>> a = Anchors(expression=[[0.0, 1.0]], jaw_pose=[[0.1, 0.0, 0.0]], labels=["surprise"])
        >>> len(a), a.num_expression
        (1, 2)
    """

    expression: torch.Tensor
    jaw_pose: torch.Tensor
    labels: List[str] = field(default_factory=list)
    eye_pose: Optional[torch.Tensor] = None
    head_name: str = ""
    au: Optional[torch.Tensor] = None
    au_names: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.expression = _float_tensor("Anchors.expression", self.expression)
        self.jaw_pose = _float_tensor("Anchors.jaw_pose", self.jaw_pose)
        if self.expression.ndim == 1:
            self.expression = self.expression[None]
        if self.jaw_pose.ndim == 1:
            self.jaw_pose = self.jaw_pose[None]
        if self.expression.ndim != 2 or self.expression.shape[0] == 0 or self.expression.shape[1] == 0:
            raise InputError(f"Anchors.expression must be (K, E) with K, E >= 1, got {tuple(self.expression.shape)}")
        k = self.expression.shape[0]
        if tuple(self.jaw_pose.shape) != (k, 3):
            raise InputError(f"Anchors.jaw_pose must be ({k}, 3) axis-angle, got {tuple(self.jaw_pose.shape)}")
        if self.eye_pose is not None:
            self.eye_pose = _float_tensor("Anchors.eye_pose", self.eye_pose)
            if self.eye_pose.ndim == 1:
                self.eye_pose = self.eye_pose[None]
            if tuple(self.eye_pose.shape) != (k, 6):
                raise InputError(
                    f"Anchors.eye_pose must be ({k}, 6) (left eye, right eye axis-angle), got {tuple(self.eye_pose.shape)}"
                )
        self.au_names = tuple(str(n) for n in self.au_names)
        if self.au is not None:
            self.au = _float_tensor("Anchors.au", self.au)
            if self.au.ndim == 1:
                self.au = self.au[None]
            if tuple(self.au.shape) != (k, len(self.au_names)):
                raise InputError(f"Anchors.au must be ({k}, {len(self.au_names)}) for its au_names, got {tuple(self.au.shape)}")
        if isinstance(self.labels, str):
            self.labels = [self.labels]
        self.labels = [str(x) for x in self.labels] if self.labels else [f"anchor{i}" for i in range(k)]
        if len(self.labels) != k:
            raise InputError(f"Anchors has {k} expressions but {len(self.labels)} labels")

    def __len__(self) -> int:
        return int(self.expression.shape[0])

    @property
    def num_expression(self) -> int:
        return int(self.expression.shape[1])

    def __getitem__(self, index: Union[int, slice]) -> "Anchors":
        """Anchors ``index`` (an int gives a one-anchor :class:`Anchors`)."""
        sel = slice(index, index + 1 if index != -1 else None) if isinstance(index, int) else index
        return Anchors(
            expression=self.expression[sel],
            jaw_pose=self.jaw_pose[sel],
            labels=self.labels[sel],
            eye_pose=None if self.eye_pose is None else self.eye_pose[sel],
            head_name=self.head_name,
            au=None if self.au is None else self.au[sel],
            au_names=self.au_names,
        )

    @classmethod
    def from_params(cls, params: FaceParams, label: str = "neutral") -> "Anchors":
        """One anchor from a single face's parameters (expression, jaw and eye poses).

        Handy for a neutral face from NED: ``Anchors.from_params(ned_output, "neutral")``.
        """
        expr = params.expression.reshape(-1, params.expression.shape[-1])
        pose = params.pose.reshape(-1, 15)
        if expr.shape[0] != 1 or pose.shape[0] != 1:
            raise InputError("Anchors.from_params needs the parameters of a single face")
        return cls(expression=expr, jaw_pose=pose[:, _JAW], labels=[label], eye_pose=pose[:, _EYES], head_name=params.head_name)


@dataclass
class Trajectory:
    """A clip of T frames of parameters with its keyframe markers.

    Attributes:
        params: :class:`FaceParams` with ``expression (T, E)``, ``pose (T, 15)``, ``cam (T, 3)``;
            ``shape (S,)`` and ``offsets (V, 3)`` are the subject's, shared by all frames (pass
            them to :class:`~flame_transit.head.Head` as they are: the identity blend is then
            computed once). Photo fields (``crop_to_image``, ``vertices_2d``, ...) are copied
            from the subject.
        fps: frames per second.
        anchor_frames: for each keyframe, the frame at which it is reached (the first frame of
            its hold); increasing, starts at 0.
        labels: one name per keyframe (anchor labels, ``"photo"``, ``"neutral"``).
        kinds: one of ``"anchor"``, ``"photo"``, ``"neutral"`` per keyframe.
        segment: ``(T,)`` index of the keyframe each frame moves *towards* (0 on the first
            keyframe and its hold).
        blend: ``(T,)`` blend weight within the segment after timing (0 → previous keyframe,
            1 → ``segment``'s keyframe).
        au: ``(T, A)`` action-unit coordinates per frame when every keyframe has them (anchors
            with ``au``; a default neutral keyframe is all zeros), else None.
        au_names: the A names of ``au``.
    """

    params: FaceParams
    fps: float
    anchor_frames: List[int]
    labels: List[str]
    kinds: List[str]
    segment: np.ndarray
    blend: np.ndarray
    au: Optional[torch.Tensor] = None
    au_names: Tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        return int(self.params.expression.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        """Playing time in seconds (``T / fps``)."""
        return self.num_frames / self.fps

    @property
    def times(self) -> np.ndarray:
        """``(T,)`` time of each frame in seconds."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    def frame(self, index: int) -> FaceParams:
        """The parameters of one frame (``expression (E,)``, ``pose (15,)``, ``cam (3,)``)."""
        t = self.num_frames
        if not -t <= index < t:
            raise InputError(f"frame {index} is outside the clip (0..{t - 1})")
        p = self.params
        return p.replace(expression=p.expression[index], pose=p.pose[index], cam=p.cam[index])


#: interpolation timings (see :func:`timing_curve`)
TIMINGS = ("linear", "ease")


def check_timing(timing: Any) -> str:
    """``timing`` itself; :class:`InputError` unless it is one of :data:`TIMINGS`."""
    if timing not in TIMINGS:
        raise InputError(f"timing must be one of {TIMINGS}, got {timing!r}")
    return timing


def timing_curve(u: np.ndarray, timing: str = "linear") -> np.ndarray:
    """Map segment progress ``u`` in ``[0, 1]`` to a blend weight in ``[0, 1]``.

    ``"linear"``: ``w = u`` (the paper). ``"ease"``: smoothstep ``w = 3u² - 2u³``, whose
    derivative is zero at both ends (smooth start and stop), monotone and symmetric.

    Example:
        >>> timing_curve(np.array([0.0, 0.25, 0.5, 1.0]), "ease").tolist()
        [0.0, 0.15625, 0.5, 1.0]
    """
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    if check_timing(timing) == "ease":
        return u * u * (3.0 - 2.0 * u)
    return u


@dataclass
class _Keyframe:
    expression: np.ndarray  # (E,)
    jaw: np.ndarray  # (3,)
    eyes: np.ndarray  # (6,)
    label: str
    kind: str
    au: Optional[np.ndarray] = None  # (A,)


def _slerp_rotvecs(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Slerp between axis-angle ``a`` and ``b`` (3,) at weights ``w`` (N,) -> (N, 3)."""
    from scipy.spatial.transform import Rotation, Slerp

    if np.array_equal(a, b):
        return np.broadcast_to(a, (len(w), 3)).copy()
    slerp = Slerp([0.0, 1.0], Rotation.from_rotvec(np.stack([a, b])))
    return slerp(np.clip(w, 0.0, 1.0)).as_rotvec()


def build_trajectory(
    subject: FaceParams,
    anchors: Anchors,
    *,
    fps: float = 30.0,
    duration: Optional[float] = None,
    timing: str = "linear",
    hold: float = 0.0,
    start: str = "first",
    neutral: Optional[Anchors] = None,
    through_neutral: Optional[bool] = None,
) -> Trajectory:
    """Interpolate anchors into a clip of per-frame parameters.

    Args:
        subject: the photo's parameters (one face): identity, head pose, camera and photo fields
            are held fixed; its expression/jaw/eyes are the start with ``start="photo"``.
        anchors: the K anchor expressions in order.
        fps: frames per second, in ``[MIN_FPS, MAX_FPS]`` (:mod:`flame_transit.checks`).
        duration: seconds per transition (segment between two consecutive keyframes), default
            :data:`DEFAULT_DURATION`; each segment has ``max(1, round(duration * fps))`` frames.
        timing: ``"linear"`` (paper eq. 16) or ``"ease"`` (smoothstep: zero velocity at each
            keyframe).
        hold: seconds each keyframe is held (``round(hold * fps)`` extra identical frames),
            including the first and the last.
        start: ``"first"`` starts on the first anchor; ``"photo"`` starts on the photo's own
            expression and jaw/eye pose and transitions to the first anchor.
        neutral: the neutral face to pass through (e.g. NED's output) as one anchor, or one per
            gap between anchors (``K - 1``); default the zero expression with a closed jaw and
            the subject's eyes.
        through_neutral: insert the neutral face between consecutive anchors (A → neutral → B);
            not between the photo and the first anchor. Default: true iff ``neutral`` is given.

    Returns:
        A :class:`Trajectory`; ``T = 1 + segments * round(duration * fps) + keyframes *
        round(hold * fps)`` frames (a single keyframe gives a still of one segment's length).

    Raises:
        InputError: a bad option (non-positive or non-finite fps/duration, negative hold, unknown
            timing/start), mismatched expression sizes or head models, or a clip longer than
            :data:`MAX_FRAMES` frames.
    """
    fps = check_fps(fps)
    duration = DEFAULT_DURATION if duration is None else positive_number("duration", duration)
    hold = positive_number("hold", hold, allow_zero=True)
    check_timing(timing)
    if start not in ("first", "photo"):
        raise InputError(f"start must be 'first' or 'photo', got {start!r}")
    if not isinstance(subject, FaceParams):
        raise InputError(f"subject must be a FaceParams, got {type(subject).__name__}")
    if not isinstance(anchors, Anchors):
        raise InputError(f"anchors must be an Anchors object, got {type(anchors).__name__}")
    if through_neutral is None:
        through_neutral = neutral is not None

    # ---- the subject (one face) ---------------------------------------------------------------
    s_expr = subject.expression.detach().reshape(-1, subject.expression.shape[-1])
    s_pose = subject.pose.detach().reshape(-1, 15)
    s_cam = subject.cam.detach().reshape(-1, 3)
    if s_expr.shape[0] != 1 or s_pose.shape[0] != 1 or s_cam.shape[0] != 1:
        raise InputError(
            "subject must be the parameters of one face (expression (E,), pose (15,)), got "
            f"expression {tuple(subject.expression.shape)}, pose {tuple(subject.pose.shape)}"
        )
    for name, value in (("expression", s_expr), ("pose", s_pose), ("cam", s_cam), ("shape", subject.shape)):
        if not torch.isfinite(value).all():
            raise InputError(f"subject.{name} contains NaN or infinite values")
    if subject.head_name and anchors.head_name and subject.head_name != anchors.head_name:
        raise InputError(
            f"anchors were made for head {anchors.head_name!r} but the subject was fitted with "
            f"{subject.head_name!r}; use a transit model trained for the subject's head"
        )
    e = anchors.num_expression
    if 0 < s_expr.shape[1] < e:
        # fewer coefficients are the leading ones (a FLAME photo fit: DECA's 50 of FLAME's 100)
        s_expr = torch.nn.functional.pad(s_expr, (0, e - s_expr.shape[1]))
    if start == "photo" and s_expr.shape[1] != e:
        raise InputError(
            f"the photo has {s_expr.shape[1]} expression coefficients but the anchors have {e}; "
            "they must come from the same head model"
        )
    dtype = subject.expression.dtype if subject.expression.is_floating_point() else torch.float32
    pose0 = s_pose[0].to(torch.float64).numpy()
    subject_eyes = pose0[_EYES]

    # ---- keyframes ----------------------------------------------------------------------------
    def anchor_keyframes(a: Anchors, kind: str) -> List[_Keyframe]:
        ex = a.expression.to(torch.float64).numpy()
        jaw = a.jaw_pose.to(torch.float64).numpy()
        eyes = None if a.eye_pose is None else a.eye_pose.to(torch.float64).numpy()
        au = None if a.au is None or a.au_names != anchors.au_names else a.au.to(torch.float64).numpy()
        return [
            _Keyframe(ex[i], jaw[i], subject_eyes if eyes is None else eyes[i], a.labels[i], kind,
                      None if au is None else au[i])
            for i in range(len(a))
        ]

    anchor_kfs = anchor_keyframes(anchors, "anchor")
    neutral_kfs: List[_Keyframe] = []
    if through_neutral and len(anchor_kfs) > 1:
        gaps = len(anchor_kfs) - 1
        if neutral is None:
            neutral_kfs = [_Keyframe(np.zeros(e), np.zeros(3), subject_eyes, "neutral", "neutral",
                                     None if anchors.au is None else np.zeros(len(anchors.au_names)))] * gaps
        else:
            if not isinstance(neutral, Anchors):
                raise InputError(f"neutral must be an Anchors object (use Anchors.from_params), got {type(neutral).__name__}")
            if neutral.num_expression != e:
                raise InputError(f"neutral has {neutral.num_expression} expression coefficients, the anchors {e}")
            if len(neutral) not in (1, gaps):
                raise InputError(f"neutral must hold 1 face or one per gap between anchors ({gaps}), got {len(neutral)}")
            kfs = anchor_keyframes(neutral, "neutral")
            neutral_kfs = kfs * gaps if len(kfs) == 1 else kfs
    keyframes: List[_Keyframe] = []
    if start == "photo":
        photo_au = subject.extras.get("au") if anchors.au is not None else None  # the photo's AUs, if known
        if photo_au is not None:
            photo_au = np.asarray(photo_au, dtype=np.float64).reshape(-1)
            photo_au = photo_au if photo_au.shape == (len(anchors.au_names),) else None
        keyframes.append(_Keyframe(s_expr[0].to(torch.float64).numpy(), pose0[_JAW], subject_eyes, "photo", "photo",
                                   photo_au))
    for i, kf in enumerate(anchor_kfs):
        if i > 0 and neutral_kfs:
            keyframes.append(neutral_kfs[i - 1])
        keyframes.append(kf)

    # ---- frame layout -------------------------------------------------------------------------
    n_seg = max(1, int(round(duration * fps)))
    n_hold = int(round(hold * fps))
    still = len(keyframes) == 1
    segments = 1 if still else len(keyframes) - 1
    total = 1 + segments * n_seg + len(keyframes) * n_hold
    if total > MAX_FRAMES:
        raise InputError(
            f"the clip would have {total} frames ({total / fps:.1f} s at {fps:g} fps), more than "
            f"the limit of {MAX_FRAMES}; lower fps, duration or hold"
        )
    ramp = timing_curve(np.arange(1, n_seg + 1) / n_seg, timing)
    ramp[-1] = 1.0
    seg_to: List[np.ndarray] = [np.zeros(1 + n_hold, dtype=np.int64)]
    weights: List[np.ndarray] = [np.zeros(1 + n_hold)]
    anchor_frames = [0]
    frame = 1 + n_hold
    for k in range(1, len(keyframes)):
        seg_to.append(np.full(n_seg + n_hold, k, dtype=np.int64))
        weights.append(np.concatenate([ramp, np.ones(n_hold)]))
        anchor_frames.append(frame + n_seg - 1)
        frame += n_seg + n_hold
    if still:
        seg_to.append(np.zeros(n_seg, dtype=np.int64))
        weights.append(np.ones(n_seg))
    segment = np.concatenate(seg_to)
    blend = np.concatenate(weights)
    assert len(segment) == total

    # ---- interpolate --------------------------------------------------------------------------
    expr = np.empty((total, e))
    jaw = np.empty((total, 3))
    eyes = np.empty((total, 6))
    with_au = all(kf.au is not None for kf in keyframes)
    au = np.empty((total, len(anchors.au_names))) if with_au else None
    for k, kf in enumerate(keyframes):
        idx = np.nonzero(segment == k)[0]
        if len(idx) == 0:
            continue
        prev = keyframes[k - 1] if k > 0 else kf
        w = blend[idx]
        expr[idx] = (1.0 - w)[:, None] * prev.expression + w[:, None] * kf.expression  # eq. 16
        jaw[idx] = _slerp_rotvecs(prev.jaw, kf.jaw, w)
        eyes[idx] = np.concatenate([_slerp_rotvecs(prev.eyes[:3], kf.eyes[:3], w), _slerp_rotvecs(prev.eyes[3:], kf.eyes[3:], w)], 1)
        done = idx[w >= 1.0]  # keyframe frames: exact values, no round-off
        expr[done], jaw[done], eyes[done] = kf.expression, kf.jaw, kf.eyes
        if au is not None:  # the same blend as the expression, so AU and expression stay in step
            au[idx] = (1.0 - w)[:, None] * prev.au + w[:, None] * kf.au
            au[done] = kf.au
    expr[0], jaw[0], eyes[0] = keyframes[0].expression, keyframes[0].jaw, keyframes[0].eyes
    if au is not None:
        au[0] = keyframes[0].au

    pose = np.broadcast_to(pose0, (total, 15)).copy()
    pose[:, _JAW] = jaw
    pose[:, _EYES] = eyes
    shape = subject.shape.detach()
    if shape.ndim > 1:
        if int(np.prod(shape.shape[:-1])) != 1:
            raise InputError(f"subject.shape must be one identity (S,), got {tuple(shape.shape)}")
        shape = shape.reshape(-1)
    params = subject.replace(
        shape=shape,
        expression=torch.as_tensor(expr, dtype=dtype),
        pose=torch.as_tensor(pose, dtype=dtype),
        cam=s_cam.to(dtype).expand(total, 3).clone(),
        head_name=subject.head_name or anchors.head_name,
        extras=dict(subject.extras),
    )
    return Trajectory(
        params=params,
        fps=fps,
        anchor_frames=anchor_frames,
        labels=[kf.label for kf in keyframes],
        kinds=[kf.kind for kf in keyframes],
        segment=segment,
        blend=blend,
        au=None if au is None else torch.as_tensor(au, dtype=dtype),
        au_names=tuple(anchors.au_names) if au is not None else (),
    )
