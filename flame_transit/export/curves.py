"""ARKit blendshape curves as files: Live Link Face's CSV layout and a JSON form.

**CSV** (``.csv``), the layout Epic's Live Link Face app exports and that its importers (Unreal,
Blender and Maya add-ons) read: a header row

``Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,...,RightEyeRoll``

(the 52 shapes in PascalCase in the app's column order, :data:`~flame_transit.arkit.LIVE_LINK_FACE_NAMES`,
then the 9 rotations), then one row per frame: the timecode ``HH:MM:SS:FF.000`` (``FF`` = the
frame within its second at the clip's nominal rate ``round(fps)``), ``61`` (52 shapes + 9
rotations), the 52 weights in ``[0, 1]`` and the rotations in radians
(:func:`~flame_transit.arkit.head_eye_rotations`).

**JSON** (``.json``): ``{"format": "flame_transit.arkit_curves", "version": 1, "fps", "frames",
"times": [T], "names": [52, Apple's names and order], "weights": [T][52], "rotation_names",
"rotation_units": "radians", "rotations": [T][9], "au_names", "au": [T][A], "full_au",
"mapping": {AU: [[shape, weight], ...]}, "head_name", "anchor_frames", "anchor_labels",
"instruction", "seed", "metadata"}``: the exact times, the AU trajectory the curves come from
and the table that mapped them.

Both are written atomically; :func:`load_arkit_curves` reads either back.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..arkit import (
    ARKIT_FULL_AU,
    ARKIT_NAMES,
    AU_TO_ARKIT,
    LIVE_LINK_FACE_NAMES,
    ROTATION_NAMES,
    au_to_arkit,
    au_trajectory,
    head_eye_rotations,
)
from ..errors import InputError
from ..io_utils import PathLike, atomic_write_bytes, user_path
from .common import resolve_fps

__all__ = ["save_arkit_csv", "save_arkit_json", "load_arkit_curves", "ArkitCurves", "CURVES_FORMAT"]

CURVES_FORMAT = "flame_transit.arkit_curves"
_PASCAL_TO_ARKIT = {n[0].upper() + n[1:]: n for n in ARKIT_NAMES}


@dataclass
class ArkitCurves:
    """ARKit curves read back by :func:`load_arkit_curves`.

    Attributes:
        names: the 52 :data:`~flame_transit.arkit.ARKIT_NAMES`.
        weights: ``(T, 52)`` float32 in ``[0, 1]``, columns in ``names`` order.
        rotations: ``(T, 9)`` radians in :data:`~flame_transit.arkit.ROTATION_NAMES` order.
        fps: frames per second (the JSON's; for a CSV the nominal rate of its timecodes, or
            None when it holds under a second of frames).
        metadata: the JSON's other fields (empty for a CSV).
    """

    names: Tuple[str, ...]
    weights: np.ndarray
    rotations: np.ndarray
    fps: Optional[float]
    metadata: Dict[str, Any] = field(default_factory=dict)


def _clip_curves(params: Any, head: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[str, ...]]:
    if params is None or head is None:
        raise InputError("ARKit curves need the clip (a Trajectory) and its head: pass params= and head=")
    au, au_names = au_trajectory(params, head)
    fp = getattr(params, "params", params)
    pose = fp.pose.detach().cpu().reshape(-1, 15).numpy()
    return au_to_arkit(au, au_names), head_eye_rotations(pose), au, au_names


def _timecode(i: int, nominal: int) -> str:
    sec, ff = divmod(int(i), nominal)
    mm, ss = divmod(sec, 60)
    hh, mm = divmod(mm, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}.000"


def save_arkit_csv(path: PathLike, params: Any = None, *, head: Any = None, fps: Optional[float] = None) -> Path:
    """Write the clip's ARKit curves in Live Link Face's CSV layout (module docstring), atomically.

    Args:
        path: target ``.csv``.
        params: the clip's :class:`~flame_transit.trajectory.Trajectory` (or per-frame
            :class:`~flame_transit.params.FaceParams`).
        head: its :class:`~flame_transit.head.Head`.
        fps: frames per second (default the trajectory's).

    Raises:
        InputError: a wrong suffix, or a clip without an AU trajectory.
    """
    if Path(os.fspath(path)).suffix.lower() != ".csv":
        raise InputError(f"save_arkit_csv writes .csv files, got {os.fspath(path)!r}")
    rate = resolve_fps(params, fps)
    weights, rotations, _, _ = _clip_curves(params, head)
    order = [ARKIT_NAMES.index(_PASCAL_TO_ARKIT[n]) for n in LIVE_LINK_FACE_NAMES]
    nominal = max(1, int(round(rate)))
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["Timecode", "BlendShapeCount", *LIVE_LINK_FACE_NAMES, *ROTATION_NAMES])
    count = len(LIVE_LINK_FACE_NAMES) + len(ROTATION_NAMES)
    for i in range(len(weights)):
        out.writerow([_timecode(i, nominal), count, *(f"{v:.6f}" for v in weights[i, order]),
                      *(f"{v:.6f}" for v in rotations[i])])
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
    return user_path(os.fspath(path)).absolute()


def save_arkit_json(path: PathLike, params: Any = None, *, head: Any = None, fps: Optional[float] = None,
                    instruction: str = "", seed: Optional[int] = None,
                    metadata: Optional[Mapping[str, Any]] = None) -> Path:
    """Write the clip's ARKit curves, AU trajectory and mapping table as JSON, atomically.

    Arguments as :func:`save_arkit_csv`, plus provenance (``instruction``, ``seed``) and
    ``metadata`` (JSON-serialisable) stored in the file.
    """
    if Path(os.fspath(path)).suffix.lower() != ".json":
        raise InputError(f"save_arkit_json writes .json files, got {os.fspath(path)!r}")
    rate = resolve_fps(params, fps)
    weights, rotations, au, au_names = _clip_curves(params, head)
    fp = getattr(params, "params", params)
    doc = {
        "format": CURVES_FORMAT,
        "version": 1,
        "fps": rate,
        "frames": int(len(weights)),
        "times": [round(i / rate, 9) for i in range(len(weights))],
        "names": list(ARKIT_NAMES),
        "weights": np.round(weights.astype(np.float64), 6).tolist(),
        "rotation_names": list(ROTATION_NAMES),
        "rotation_units": "radians",
        "rotations": np.round(rotations.astype(np.float64), 6).tolist(),
        "au_names": list(au_names),
        "au": np.round(au.astype(np.float64), 6).tolist(),
        "full_au": ARKIT_FULL_AU,
        "mapping": {k: [[s, w] for s, w in v] for k, v in AU_TO_ARKIT.items()},
        "head_name": str(getattr(fp, "head_name", "") or getattr(head, "name", "")),
        "anchor_frames": [int(x) for x in getattr(params, "anchor_frames", [])],
        "anchor_labels": [str(x) for x in getattr(params, "labels", [])],
        "instruction": str(instruction),
        "seed": None if seed is None else int(seed),
    }
    try:
        doc["metadata"] = json.loads(json.dumps(dict(metadata or {})))
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata must be JSON-serialisable: {exc}") from exc
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    atomic_write_bytes(path, text.encode("utf-8", "surrogatepass"))
    return user_path(os.fspath(path)).absolute()


def _fps_from_timecodes(codes: List[str]) -> Optional[float]:
    frames = []
    for c in codes:
        parts = c.split(":")
        if len(parts) != 4:
            return None
        try:
            frames.append(int(float(parts[3])))
        except ValueError:
            return None
    for i in range(1, len(frames)):  # the frame number restarts each second
        if frames[i] < frames[i - 1]:
            return float(frames[i - 1] + 1)
    return None


def load_arkit_curves(path: PathLike) -> ArkitCurves:
    """Read ARKit curves from a Live Link Face CSV (ours or the app's) or our JSON.

    Columns are matched by name, case-insensitively; shapes missing from a CSV read as 0 and
    rotations missing read as 0.

    Raises:
        InputError: a missing or unreadable file, or one with none of the 52 shape columns.
    """
    p = user_path(os.fspath(path))
    if not p.is_file():
        raise InputError(f"curves file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {p} as UTF-8 text: {exc}") from exc
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
            names = tuple(doc["names"])
            w = np.asarray(doc["weights"], dtype=np.float32).reshape(-1, len(names))
            rot = np.asarray(doc.get("rotations") or np.zeros((len(w), len(ROTATION_NAMES))), dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{p} is not an ARKit curves JSON ({exc})") from exc
        index = {n.lower(): i for i, n in enumerate(names)}
        weights = np.zeros((len(w), len(ARKIT_NAMES)), np.float32)
        for k, n in enumerate(ARKIT_NAMES):
            if n.lower() in index:
                weights[:, k] = w[:, index[n.lower()]]
        meta = {k: v for k, v in doc.items() if k not in ("names", "weights", "rotations")}
        return ArkitCurves(ARKIT_NAMES, weights, rot.reshape(len(w), -1), float(doc.get("fps") or 0) or None, meta)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InputError(f"{p}: not a readable CSV ({exc})") from exc
    if not rows:
        raise InputError(f"{p} is empty")
    header = [h.strip().lower() for h in rows[0]]
    col = {h: i for i, h in enumerate(header)}
    found = [n for n in ARKIT_NAMES if n.lower() in col]
    if not found:
        raise InputError(f"{p} has none of ARKit's 52 blendshape columns (EyeBlinkLeft, ..., TongueOut)")
    body = [r for r in rows[1:] if r]
    weights = np.zeros((len(body), len(ARKIT_NAMES)), np.float32)
    rot = np.zeros((len(body), len(ROTATION_NAMES)), np.float32)
    try:
        for t, r in enumerate(body):
            for k, n in enumerate(ARKIT_NAMES):
                if n.lower() in col:
                    weights[t, k] = float(r[col[n.lower()]])
            for k, n in enumerate(ROTATION_NAMES):
                if n.lower() in col:
                    rot[t, k] = float(r[col[n.lower()]])
    except (ValueError, IndexError) as exc:
        raise InputError(f"{p}: row {t + 2} is not a row of numbers ({exc})") from exc
    fps = _fps_from_timecodes([r[col["timecode"]] for r in body]) if "timecode" in col else None
    return ArkitCurves(ARKIT_NAMES, weights, rot, fps)
