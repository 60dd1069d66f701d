"""MediaPipe Face Mesh landmark detection (478 points with iris).

One ``FaceMesh`` graph per ``max_num_faces`` value is kept per process (building one costs
~50 ms); a lock serialises calls because a MediaPipe graph is not re-entrant.

Coordinates returned here are **image pixels of the caller's image** (x right, y down) plus
MediaPipe's relative depth converted to pixels (``z * W``; smaller = nearer the camera, the
origin is arbitrary). Images larger than ``max_side`` are downscaled for detection and the
landmarks mapped back.
"""

from __future__ import annotations

import contextlib
import sys
import os

import threading
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from .._memo import ContentMemo, content_digest
from ..errors import InputError, NoFaceError
from .image_io import ImageLike, load_image

__all__ = [
    "FaceLandmarks",
    "detect_landmarks",
    "detect_all_faces",
    "face_box",
    "mirror_index",
    "mirror_landmarks",
    "NUM_MEDIAPIPE_LANDMARKS",
    "DEFAULT_MAX_SIDE",
]

NUM_MEDIAPIPE_LANDMARKS = 478
#: detection runs on images no larger than this (longest side, pixels)
DEFAULT_MAX_SIDE = 1280
#: default number of faces MediaPipe looks for (more than one so that crowds are noticed)
DEFAULT_MAX_FACES = 4
#: a NoFaceError on an image whose longer side is at least this says small faces are missed
LARGE_IMAGE_SIDE = 800
#: faces narrower (cheek to cheek) than this share of the image's longer side are often missed.
#: Measured here: examples/face.jpg shrunk and pasted on grey canvases at 4 places each; on
#: 1024x1024 it was found down to 26 px (3 %), patchily at 22-25 px, never at 20 px; on
#: 2560x2560 found from 80 px (3 %), patchily at 26-70 px (the frame is downscaled to
#: DEFAULT_MAX_SIDE for detection, so the limit grows with the image)
SMALL_FACE_SHARE = 0.03

_MESHES: Dict[int, object] = {}
_DETECTOR: List[object] = []
#: full-range detector fallback: crops are this many detector boxes wide, resized to CROP_SIDE
CROP_SCALE = 2.2
CROP_SIDE = 512
_LOCK = threading.Lock()

# MediaPipe landmarks bounding a FAN-68-like box (jaw line + brows, no forehead)
_JAW_LINE = (
    127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397,
    288, 361, 323, 454, 356,
)  # fmt: skip
_BROWS = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55, 300, 293, 334, 296, 336, 276, 283, 282, 295, 285)


@dataclass
class FaceLandmarks:
    """MediaPipe landmarks of one face.

    Attributes:
        points: ``(478, 3)`` float64: x, y in pixels of the input image (y down) and depth
            ``z * W`` in pixels (smaller = nearer; arbitrary origin).
        image_size: ``(H, W)`` of the input image.
        face_index: which face this is (0 = largest).
        num_faces: how many faces MediaPipe found.
    """

    points: np.ndarray
    image_size: Tuple[int, int]
    face_index: int = 0
    num_faces: int = 1

    @property
    def face_width(self) -> float:
        """Cheek-to-cheek distance in pixels (landmarks 234-454, 2D)."""
        return float(np.linalg.norm(self.points[454, :2] - self.points[234, :2]))

    def box(self, scale: float = 1.25) -> Tuple[Tuple[float, float], float]:
        """DECA-style square crop ``(center_xy, size)`` in pixels, see :func:`face_box`."""
        return face_box(self.points, scale=scale)


def face_box(points: np.ndarray, scale: float = 1.25) -> Tuple[Tuple[float, float], float]:
    """Square face crop like DECA's from 68-point landmarks, computed on MediaPipe points.

    The box spans the jaw line and the brows (what FAN's 68 points span); its side is the mean
    of width and height x 1.1 x ``scale`` and it is centred on the box centre.

    Args:
        points: ``(478, 2+)`` MediaPipe landmarks in pixels.
        scale: DECA uses 1.25.

    Returns:
        ``((cx, cy), size)`` in pixels.

    Example:
        >>> pts = np.zeros((478, 2)); pts[_JAW_LINE, 0] = np.linspace(0, 100, len(_JAW_LINE))
        >>> pts[152, 1] = 100.0
        >>> (cx, cy), size = face_box(pts)
        >>> cx, cy, round(size, 6)
        (50.0, 50.0, 137.5)
    """
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    sel = pts[list(_JAW_LINE) + list(_BROWS)]
    left, top = sel.min(axis=0)
    right, bottom = sel.max(axis=0)
    size = ((right - left) + (bottom - top)) / 2.0 * 1.1 * float(scale)
    return (float((left + right) / 2.0), float((top + bottom) / 2.0)), float(size)


_MIRROR: Optional[np.ndarray] = None


def mirror_index() -> np.ndarray:
    """``(478,)`` MediaPipe landmark of the mirror-symmetric partner of each landmark
    (self for points on the midline), read from the bundled open head.

    Example:
        >>> mi = mirror_index()
        >>> bool((mi[mi] == np.arange(478)).all()), int(mi[234]), int(mi[1])
        (True, 454, 1)
    """
    global _MIRROR
    if _MIRROR is None:
        from ..errors import AssetError
        from ..head.io import OPEN_HEAD_PATH

        try:
            with np.load(OPEN_HEAD_PATH, allow_pickle=False) as npz:
                if "mirror_index" in npz.files:
                    mi = np.asarray(npz["mirror_index"], dtype=np.int64)[:NUM_MEDIAPIPE_LANDMARKS]
                else:  # nearest reflected template point (the template is symmetric)
                    from scipy.spatial import cKDTree

                    t = np.asarray(npz["v_template"], dtype=np.float64)[:NUM_MEDIAPIPE_LANDMARKS]
                    mi = cKDTree(t).query(t * np.array([-1.0, 1.0, 1.0]))[1].astype(np.int64)
        except (OSError, KeyError, ValueError) as exc:
            raise AssetError(f"cannot read the MediaPipe mirror map from {OPEN_HEAD_PATH}: {exc}") from exc
        if mi.shape != (NUM_MEDIAPIPE_LANDMARKS,) or not (mi[mi] == np.arange(NUM_MEDIAPIPE_LANDMARKS)).all():
            raise AssetError(f"{OPEN_HEAD_PATH}: mirror_index is not an involution of 0..477")
        _MIRROR = mi
    return _MIRROR


def mirror_landmarks(points: np.ndarray, image_width: float) -> np.ndarray:
    """Landmarks of the horizontally mirrored image: ``x → W - x`` and partners swapped.

    Example:
        >>> p = np.random.default_rng(0).random((478, 3)) * 100
        >>> bool(np.allclose(mirror_landmarks(mirror_landmarks(p, 100.0), 100.0), p))
        True
    """
    mi = mirror_index()
    out = np.asarray(points, dtype=np.float64)[mi].copy()
    out[:, 0] = float(image_width) - out[:, 0]
    return out


@contextlib.contextmanager
def _native_stderr_quiet(graph: Tuple[Any, ...]):
    """Silence MediaPipe's C++ start-up chatter (TFLite/absl write straight to fd 2).

    Only the first run of each ``graph`` (a Face Mesh per face count, the face detector) per
    process is silenced: model loading and first-inference notes; set FLAME_TRANSIT_VERBOSE=1
    to see everything. Python exceptions are unaffected."""
    if graph in _STDERR_SILENCED or os.environ.get("FLAME_TRANSIT_VERBOSE"):
        yield
        return
    _STDERR_SILENCED.add(graph)
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. some notebooks)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_STDERR_SILENCED: Set[Tuple[Any, ...]] = set()


def _face_mesh(max_num_faces: int):
    mesh = _MESHES.get(max_num_faces)
    if mesh is None:
        # MediaPipe's C++ side logs model-loading chatter to stderr; keep warnings and errors.
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            from mediapipe.python.solutions import face_mesh as mp_face_mesh
        except ImportError as exc:  # pragma: no cover - mediapipe is a core dependency
            raise ImportError(
                "MediaPipe Face Mesh is not available: pip install 'mediapipe>=0.10.14,<=0.10.21' "
                f"({exc})"
            ) from exc
        # mediapipe keeps the "PortAudio not found" import error with its traceback, which pins
        # the importing frames (and whatever they reference) for the life of the process.
        audio = sys.modules.get("mediapipe.tasks.python.audio.core.audio_record")
        err = getattr(audio, "sd_error", None)
        if isinstance(err, BaseException):
            err.__traceback__ = None
        mesh = mp_face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=int(max_num_faces),
            refine_landmarks=True,
            min_detection_confidence=0.5,
        )
        _MESHES[max_num_faces] = mesh
    return mesh


def _downscale(image: np.ndarray, max_side: int) -> Tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    side = max(h, w)
    if max_side <= 0 or side <= max_side:
        return image, 1.0
    f = max_side / float(side)
    nh, nw = max(1, int(round(h * f))), max(1, int(round(w * f)))
    from PIL import Image

    small = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR, reducing_gap=2.0))
    return np.ascontiguousarray(small), nw / float(w)


def detect_all_faces(image: ImageLike, *, max_num_faces: int = DEFAULT_MAX_FACES,
                     max_side: int = DEFAULT_MAX_SIDE, flip_average: bool = True) -> List[np.ndarray]:
    """Landmarks of every face MediaPipe finds, largest first.

    Args:
        image: anything :func:`~flame_transit.encode.load_image` accepts.
        max_num_faces: upper bound on faces to look for.
        max_side: detection image size limit (longest side, pixels).
        flip_average: also run MediaPipe on the mirrored image and average each face with its
            mirrored detection (test-time flip augmentation: halves MediaPipe's left/right
            bias, makes the result exactly mirror-equivariant; costs a second detection).

    Returns:
        list of ``(478, 3)`` arrays in input-image pixels (see :class:`FaceLandmarks`); empty if
        there is no face.
    """
    if isinstance(max_num_faces, bool) or int(max_num_faces) < 1:
        raise InputError(f"max_num_faces must be >= 1, got {max_num_faces}")
    rgb = load_image(image)
    key = content_digest(rgb, int(max_num_faces), int(max_side), bool(flip_average))
    hit = _DETECTIONS.get(key)
    if hit is None:
        hit = _detect_all_faces(rgb, int(max_num_faces), int(max_side), bool(flip_average))
        _DETECTIONS.put(key, hit)
    return [face.copy() for face in hit]


#: the latest photos' detections (MediaPipe is deterministic): a photo animated again is not
#: detected again (two MediaPipe passes, 7.4 ms each on a 512² photo here); frames of a video
#: are kept too but each entry is small
_DETECTIONS = ContentMemo(max_items=16)


def _detect_all_faces(rgb: np.ndarray, max_num_faces: int, max_side: int, flip_average: bool) -> List[np.ndarray]:
    faces = _detect(rgb, max_num_faces, max_side)
    if not flip_average or not faces:
        return faces
    w = float(rgb.shape[1])
    flipped = [mirror_landmarks(f, w) for f in _detect(np.ascontiguousarray(rgb[:, ::-1]), max_num_faces, max_side)]
    out = []
    for face in faces:
        centre = face[:, :2].mean(axis=0)
        width = max(float(np.ptp(face[:, 0])), 1.0)
        best = min(flipped, key=lambda g: float(np.linalg.norm(g[:, :2].mean(axis=0) - centre)), default=None)
        if best is not None and np.linalg.norm(best[:, :2].mean(axis=0) - centre) < 0.25 * width:
            face = 0.5 * (face + best)
        out.append(face)
    return out


def _face_detector():
    """MediaPipe's full-range face detector (``model_selection=1``: faces down to a few percent
    of the frame), built once per process."""
    if not _DETECTOR:
        from mediapipe.python.solutions import face_detection as mp_face_detection

        _DETECTOR.append(mp_face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5))
    return _DETECTOR[0]


def _mesh_landmarks(image: np.ndarray, max_num_faces: int) -> List[np.ndarray]:
    """Face Mesh on ``image``: ``(478, 3)`` arrays in ``image`` pixels (z on the x scale)."""
    h, w = image.shape[:2]
    with _LOCK:
        with _native_stderr_quiet(("mesh", int(max_num_faces))):
            result = _face_mesh(int(max_num_faces)).process(image)
    faces = []
    for lms in result.multi_face_landmarks or []:
        arr = np.array([(p.x, p.y, p.z) for p in lms.landmark], dtype=np.float64)
        if arr.shape[0] != NUM_MEDIAPIPE_LANDMARKS:  # pragma: no cover - refine_landmarks=True
            raise RuntimeError(f"MediaPipe returned {arr.shape[0]} landmarks, expected 478")
        arr *= np.array([w, h, w], dtype=np.float64)
        faces.append(arr)
    return faces


def _detector_boxes(rgb: np.ndarray) -> List[Tuple[float, float, float, float, float]]:
    """The full-range detector's faces in ``rgb``: ``(x, y, width, height, score)`` in pixels."""
    H, W = rgb.shape[:2]
    with _LOCK:
        with _native_stderr_quiet(("detector",)):
            result = _face_detector().process(np.ascontiguousarray(rgb))
    boxes = []
    for det in result.detections or []:
        b = det.location_data.relative_bounding_box
        boxes.append((b.xmin * W, b.ymin * H, b.width * W, b.height * H, float(det.score[0])))
    return boxes


def _tile_starts(length: int, tile: int) -> List[int]:
    starts = list(range(0, max(length - tile, 0) + 1, max(tile // 2, 1)))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _tiled_detector_boxes(rgb: np.ndarray) -> List[Tuple[float, float, float, float, float]]:
    """Faces too small for the detector on the whole photo (it sees a 192-pixel copy: a face
    45 pixels wide in a 1024-pixel photo, or any face in a panorama): the detector runs on
    half-overlapping square tiles half the photo's longer side (at most its shorter side), and
    boxes found twice are merged (the higher score kept). 9-14 tiles, ~0.1 s."""
    H, W = rgb.shape[:2]
    tile = min(H, W, max(H, W) // 2)
    if tile < 32:
        return []
    found = []
    for y in _tile_starts(H, tile):
        for x in _tile_starts(W, tile):
            found += [(bx + x, by + y, bw, bh, sc) for bx, by, bw, bh, sc in _detector_boxes(rgb[y:y + tile, x:x + tile])]
    kept: List[Tuple[float, float, float, float, float]] = []
    for box in sorted(found, key=lambda b: -b[4]):
        if all(_overlap(box, k) < 0.3 for k in kept):
            kept.append(box)
    return kept


def _overlap(a: Tuple[float, ...], b: Tuple[float, ...]) -> float:
    """Intersection over the smaller box's area of two ``(x, y, w, h, ...)`` boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(min(a[2] * a[3], b[2] * b[3]), 1e-9)


def _detect_in_boxes(rgb: np.ndarray, max_num_faces: int) -> List[np.ndarray]:
    """Faces that Face Mesh's own short-range detector misses (small faces, several faces):
    the full-range detector finds boxes, Face Mesh runs on a square crop around each."""
    from PIL import Image

    H, W = rgb.shape[:2]
    boxes = _detector_boxes(rgb) or _tiled_detector_boxes(rgb)
    boxes.sort(key=lambda b: -b[2] * b[3])
    faces = []
    for x, y, bw, bh, _ in boxes[:max_num_faces]:
        side = CROP_SCALE * max(bw, bh)
        cx, cy = x + bw / 2, y + bh / 2
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        n = max(int(round(side)), 1)
        # pad with edge pixels where the crop leaves the image
        ys = np.clip(np.arange(y0, y0 + n), 0, H - 1)
        xs = np.clip(np.arange(x0, x0 + n), 0, W - 1)
        crop = np.ascontiguousarray(rgb[ys][:, xs])
        k = CROP_SIDE / float(n)
        crop = np.asarray(Image.fromarray(crop).resize((CROP_SIDE, CROP_SIDE), Image.BILINEAR))
        for arr in _mesh_landmarks(np.ascontiguousarray(crop), 1):
            arr /= k
            arr[:, 0] += x0
            arr[:, 1] += y0
            faces.append(arr)
    return faces


def _detect(rgb: np.ndarray, max_num_faces: int, max_side: int) -> List[np.ndarray]:
    small, f = _downscale(rgb, int(max_side))
    faces = [a / f for a in _mesh_landmarks(small, max_num_faces)]  # detection -> input pixels
    if not faces:
        faces = _detect_in_boxes(rgb, max_num_faces)
    if not faces:
        return []
    areas = [np.prod(np.ptp(a[:, :2], axis=0)) for a in faces]
    order = np.argsort(-np.asarray(areas), kind="stable")
    return [faces[i] for i in order]


def detect_landmarks(image: ImageLike, *, face_index: Optional[int] = None,
                     max_num_faces: int = DEFAULT_MAX_FACES,
                     max_side: int = DEFAULT_MAX_SIDE, flip_average: bool = True) -> FaceLandmarks:
    """MediaPipe's 478 landmarks of one face.

    Args:
        image: anything :func:`~flame_transit.encode.load_image` accepts.
        face_index: which face when there are several (0 = largest). ``None`` takes the largest
            and warns if there are more.
        max_num_faces: how many faces to look for.
        max_side: images with a longer side are downscaled for detection.
        flip_average: average with the detection on the mirrored image (see
            :func:`detect_all_faces`).

    Raises:
        NoFaceError: no face found.
        InputError: ``face_index`` out of range or a bad image.
    """
    rgb = load_image(image)
    if face_index is not None:
        if isinstance(face_index, bool) or not isinstance(face_index, (int, np.integer)) or face_index < 0:
            raise InputError(f"face_index must be a non-negative integer, got {face_index!r}")
        max_num_faces = max(int(max_num_faces), int(face_index) + 1)
    faces = detect_all_faces(rgb, max_num_faces=max_num_faces, max_side=max_side, flip_average=flip_average)
    if not faces:
        longer = max(rgb.shape[:2])
        small = ""
        if longer >= LARGE_IMAGE_SIDE:  # a face can be too small only in a large frame
            small = (f"; in an image this large a face narrower than about {round(SMALL_FACE_SHARE * longer)} px "
                     f"({SMALL_FACE_SHARE:.0%} of its longer side, cheek to cheek) is often not found: "
                     "crop the photo closer to the face")
        raise NoFaceError(
            f"no face found in the {rgb.shape[1]}x{rgb.shape[0]} image; use a photo with a clearly "
            "visible, roughly frontal, evenly lit face (not cut off by the frame edge, eyes "
            f"and mouth unobstructed){small}"
        )
    if face_index is None:
        if len(faces) > 1:
            warnings.warn(
                f"{len(faces)} faces found; using the largest (choose another with "
                f"face=0..{len(faces) - 1} in animate(), --face N on the command line or "
                "face_index= in encode(); ordered largest first)",
                stacklevel=2,
            )
        idx = 0
    else:
        idx = int(face_index)
        if idx >= len(faces):
            raise InputError(f"face_index={idx} but only {len(faces)} face(s) found (0 = largest)")
    return FaceLandmarks(points=faces[idx], image_size=(int(rgb.shape[0]), int(rgb.shape[1])),
                         face_index=idx, num_faces=len(faces))
