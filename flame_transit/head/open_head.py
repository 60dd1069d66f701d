"""The bundled open head: constants and helpers.

The open head (``flame_transit/head/data/open_head.npz``, built by ``tools/build_open_head.py``)
is a licence-clean head in FLAME layout on the MediaPipe Face Mesh topology.

Design
------
* **Topology.** Vertex ``i`` is MediaPipe Face Mesh landmark ``i`` for ``i < 478`` (468 mesh
  points + 10 iris points, ``refine_landmarks=True``). Skin triangles (``faces``) are MediaPipe's
  published tessellation (852 triangles, normals towards +Z); the eyes and the mouth are holes.
  Extra vertices after index 477 (never landmarks) carry ``face_parts``:

  - ``mouth_interior``: a dark cavity closing the mouth hole from behind (a short tube behind
    the inner lip contour and a back wall whose centre is skinned half to the jaw, half to the
    head), visible when the lips part;
  - ``eye_left`` / ``eye_right``: sclera (a 3 mm tube behind the lid contour and a back fan;
    it follows the lids and collapses when they close);
  - ``iris_left`` / ``iris_right``: round iris disks in the plane of MediaPipe's iris points,
    skinned to the eye joints;
  - ``lips``, ``brow_left``, ``brow_right``: *subsets of the skin triangles* ``faces``, for
    colouring (not extra geometry).

  Left = subject's left = +X.
* **Units and frame.** Metres; +X subject's left, +Y up, +Z towards the viewer. The neutral
  face width ``W`` (landmarks 234-454) is 0.14 m. Origin: X on the symmetry plane, Y at the
  height of the eye corners, Z = nose tip - 0.10 m (roughly the head centre).
* **Neutral template.** MediaPipe on ``skimage.data.astronaut()`` and its mirror image,
  symmetrised (left/right landmark pairs stored as ``mirror_index``), scaled to ``W``; then the
  photo's smile is removed by fitting and subtracting action units (AU5, AU6, AU10, AU12, AU25:
  mouth width 0.38 W, corners 0.01 W below the lip line, stomion at a third of
  subnasale-menton, lower lid at the lower limbus), and the mouth is authored: the inner lips
  meet on a smooth lip line, the commissure is untangled, the lips are made a little fuller.
* **Identity** (``shapedirs``, :data:`SHAPE_NAMES`): hand-authored, smooth, mirror-symmetric
  directions; coefficient 1.0 is about one standard deviation (2-6 mm).
* **Expression** (``exprdirs``, :data:`EXPRESSION_NAMES`): one FACS action unit per
  coordinate, 1.0 = a strong (E-level) activation. Each AU is a smooth displacement field
  authored on named landmark regions (:data:`REGIONS`) with compact geodesic falloff. Peak
  magnitudes as fractions of ``W``: brow raise (AU1 inner, AU2 outer) 0.065 W, brow lowering
  (AU4) 0.03 W, upper-lid raise (AU5) 0.02 W, lip-corner movement (AU12/15/20) 0.045 W,
  AU43 brings the upper lid onto the lower lid. Cheek bulges (AU6/AU12) move in +Z. Where an
  AU would push the closed inner lips through each other they are kept in contact instead.
  ``AU12L + AU12R == AU12`` and ``AU14L + AU14R == AU14`` (a smooth split at the midline).
  The iris points (468-477) have no expression displacement (they follow the eye joints).
* **AU26 (jaw drop) is not an expression coordinate** but the jaw joint: pose index 6 (jaw X
  rotation) = :data:`JAW_RAD_PER_AU26` x AU26. **A positive rotation about +X opens the mouth**
  (the chin moves down and back); AU26 = 1 drops the chin (152) by about 0.115 W and parts the
  lips (13-14) by about 0.13 W.
* **Joints.** FLAME's tree (global, neck, jaw, left_eye, right_eye; parents -1, 0, 1, 1, 1),
  regressed from vertices (``J_regressor`` rows are affine vertex combinations, so joints
  follow identity): global ~ head centre, neck below and behind it, jaw ~ behind the jaw angle
  below the ears, eyes at the eyeball centres (12 mm behind the iris centres 468/473). Skinning:
  lower lip, chin and the face below the mouth corners -> jaw, smoothly blended at the cheeks
  and the mouth corners; iris points -> eye joints; the rest -> neck.
* **Pose correctives** (``posedirs``, FLAME layout): only the jaw's. As the jaw opens the relaxed
  lip corners move towards the midline (:data:`JAW_LIP_NARROWING` x the AU20 field per unit of
  AU26, on the ``sin`` entry of the jaw rotation), so an open mouth is an oval, not a wide slot.
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError

__all__ = [
    "EXPRESSION_NAMES",
    "SHAPE_NAMES",
    "JAW_RAD_PER_AU26",
    "JAW_LIP_NARROWING",
    "FACE_WIDTH_M",
    "NUM_LANDMARKS",
    "REGIONS",
    "EMOTION_PROTOTYPES",
    "EMOTION_NAMES",
    "EXPRESSION_GAIN",
    "au26_to_jaw_pose",
    "au_params",
    "prototype_params",
]

#: Expression coordinates of the open head, in order (L = subject's left = +X).
EXPRESSION_NAMES: Tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU16",
    "AU17", "AU20", "AU23", "AU24", "AU25", "AU43", "AU12L", "AU12R", "AU14L", "AU14R",
)  # fmt: skip

#: Identity directions of the open head, in order.
SHAPE_NAMES: Tuple[str, ...] = (
    "face_width", "face_length", "jaw_width", "chin_height", "chin_projection", "nose_length",
    "nose_width", "nose_projection", "eye_spacing", "eye_size", "lip_thickness", "mouth_width",
    "brow_height", "forehead_height", "cheek_fullness", "face_depth",
)  # fmt: skip

#: Face width W (landmarks 234-454) of the neutral template, metres.
FACE_WIDTH_M = 0.14
#: Pose corrective of the jaw: per unit of AU26, the lip corners move medially by this many
#: lip-stretcher (AU20) fields, so a dropped jaw opens an oval mouth, not a wide slot.
JAW_LIP_NARROWING = 1.0
#: MediaPipe landmarks (with iris) = the first vertices of the open head.
NUM_LANDMARKS = 478
#: Jaw X rotation (radians, pose index 6) for AU26 = 1; positive opens the mouth.
JAW_RAD_PER_AU26 = 0.2

#: Named landmark regions (MediaPipe indices). Contours run from the subject's right (-X) to
#: the left (+X), or outer -> inner for brows; "_r" = subject's right (-X), "_l" = left (+X).
REGIONS: Dict[str, Tuple[int, ...]] = {
    "lip_upper_outer": (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291),
    "lip_lower_outer": (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291),
    "lip_upper_inner": (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308),
    "lip_lower_inner": (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308),
    "mouth_corners": (61, 291),
    "eye_r_upper": (33, 246, 161, 160, 159, 158, 157, 173, 133),
    "eye_r_lower": (33, 7, 163, 144, 145, 153, 154, 155, 133),
    "eye_l_upper": (362, 398, 384, 385, 386, 387, 388, 466, 263),
    "eye_l_lower": (362, 382, 381, 380, 374, 373, 390, 249, 263),
    "brow_r_lower": (46, 53, 52, 65, 55),
    "brow_r_upper": (70, 63, 105, 66, 107),
    "brow_l_lower": (276, 283, 282, 295, 285),
    "brow_l_upper": (300, 293, 334, 296, 336),
    "iris_r": (468, 469, 470, 471, 472),
    "iris_l": (473, 474, 475, 476, 477),
    "nose_bridge": (168, 6, 197, 195, 5, 4, 1),
    "nose_tip": (1, 4, 19, 94, 2),
    "nose_ala_r": (45, 220, 115, 48, 64, 98, 97),
    "nose_ala_l": (275, 440, 344, 278, 294, 327, 326),
    "chin": (152, 175, 199, 200, 18, 148, 377, 171, 396),
    "face_oval": (
        10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
        377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
    ),
    "forehead": (10, 151, 9, 108, 337, 69, 299, 67, 297, 109, 338, 104, 333, 103, 332),
    "cheek_r": (50, 205, 123, 117, 118, 101, 36, 187, 207, 147),
    "cheek_l": (280, 425, 352, 346, 347, 330, 266, 411, 427, 376),
}  # fmt: skip

#: EMFACS prototypes (Ekman & Friesen) as AU intensities; "AU26" is applied through the jaw.
#: Beyond the minimal EMFACS sets, anger carries a raised chin and pressed, down-turned lips
#: (17+15+23) and disgust narrowed eyes and lowered brows (4+7), and sadness a raised chin and
#: drooping lids (17+43) with a milder inner-brow raise: without them the independent judge read
#: anger as sadness or joy, disgust and sadness as fear (docs/eval/perceptual). Surprise raises
#: the brows about 10 mm at the default gain, not 18 mm (a brow pushed under the fringe read as
#: fear); fear draws the raised brows together (4) over a wide, barely opened mouth (20 > 26:
#: with the jaw dropped it read as surprise). The transit stage scales these by
#: :data:`EXPRESSION_GAIN`.
EMOTION_PROTOTYPES: Dict[str, Dict[str, float]] = {
    "neutral": {},
    "happiness": {"AU6": 1.0, "AU12": 1.0, "AU25": 0.5},
    "sadness": {"AU1": 0.65, "AU4": 0.65, "AU15": 1.1, "AU17": 0.65, "AU43": 0.35},
    "surprise": {"AU1": 0.55, "AU2": 0.55, "AU5": 0.9, "AU25": 0.5, "AU26": 0.9},
    "fear": {"AU1": 1.0, "AU2": 0.4, "AU4": 1.0, "AU5": 1.0, "AU7": 0.3, "AU20": 1.3, "AU25": 0.6, "AU26": 0.2},
    "anger": {"AU4": 1.3, "AU5": 0.4, "AU7": 0.9, "AU10": 0.3, "AU15": 0.5, "AU17": 0.7, "AU23": 0.6},
    "disgust": {"AU4": 0.4, "AU7": 0.4, "AU9": 1.1, "AU10": 0.7, "AU15": 0.5, "AU16": 0.3, "AU17": 0.3, "AU25": 0.25},
    "contempt": {"AU12L": 0.7, "AU14L": 0.9},
}  # fmt: skip
EMOTION_NAMES: Tuple[str, ...] = tuple(EMOTION_PROTOTYPES)

#: Legibility gain on this head's AU intensities (the transit stage's generated offsets, the
#: pictures' prototypes): the authored fields at activation 1 read as "neutral" to an
#: independent classifier. Calibrated with the perceptual eval (docs/eval/perceptual).
EXPRESSION_GAIN = 2.0


def au26_to_jaw_pose(au26: Union[float, np.ndarray, "torch.Tensor"]):  # noqa: F821
    """Jaw pose ``(..., 3)`` axis-angle for an AU26 (jaw drop) intensity ``(...)``.

    Returns a torch tensor for tensor input, else a numpy array.

    Example:
        >>> au26_to_jaw_pose(1.0).round(3).tolist()
        [0.2, 0.0, 0.0]
    """
    try:
        import torch

        if isinstance(au26, torch.Tensor):
            zeros = torch.zeros_like(au26)
            return torch.stack([au26 * JAW_RAD_PER_AU26, zeros, zeros], dim=-1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    x = np.asarray(au26, dtype=np.float64)
    return np.stack([x * JAW_RAD_PER_AU26, np.zeros_like(x), np.zeros_like(x)], axis=-1)


def au_params(aus: Mapping[str, float], head=None) -> Tuple[np.ndarray, np.ndarray]:
    """Expression vector ``(E,)`` and jaw pose ``(3,)`` for a dict of AU intensities.

    Args:
        aus: ``{"AU12": 1.0, "AU26": 0.5, ...}``; AU26 goes to the jaw pose.
        head: a :class:`~flame_transit.head.Head` whose ``expression_names`` are AUs (the open
            head); ``None`` uses :data:`EXPRESSION_NAMES`.

    Example:
        >>> e, j = au_params({"AU12": 1.0, "AU26": 1.0})
        >>> float(e[EXPRESSION_NAMES.index("AU12")]), round(float(j[0]), 2)
        (1.0, 0.2)
    """
    names: Sequence[str] = EXPRESSION_NAMES if head is None else tuple(head.expression_names)
    index = {n: i for i, n in enumerate(names)}
    expr = np.zeros(len(names), dtype=np.float32)
    jaw = np.zeros(3, dtype=np.float32)
    for au, value in aus.items():
        if au == "AU26":
            jaw[:] = au26_to_jaw_pose(float(value))
        elif au in index:
            expr[index[au]] += float(value)
        else:
            hint = (
                "this head's expression coordinates are not action units (use the open head)"
                if not any(n.startswith("AU") for n in names)
                else f"known: {', '.join(names)}, AU26"
            )
            raise InputError(f"unknown action unit {au!r}: {hint}")
    return expr, jaw


def prototype_params(name: str, head=None) -> Tuple[np.ndarray, np.ndarray]:
    """EMFACS prototype ``name`` as (expression ``(E,)``, jaw pose ``(3,)``) for the open head.

    Example:
        >>> e, j = prototype_params("surprise")
        >>> e.shape, j[0] > 0
        ((22,), True)
    """
    key = str(name).strip().lower()
    if key not in EMOTION_PROTOTYPES:
        raise InputError(f"unknown emotion {name!r}; known: {', '.join(EMOTION_NAMES)}")
    return au_params(EMOTION_PROTOTYPES[key], head)
