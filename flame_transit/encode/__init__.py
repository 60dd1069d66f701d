"""Photo → face parameters (the package; the photo encoder is the function
:func:`flame_transit.encode.encode`).

* :func:`encode` (default, offline): MediaPipe Face Mesh landmarks + a deterministic bounded
  least-squares fit of the head (the bundled open head: FACS action-unit expressions).
* :class:`DecaEncoder`: DECA's coarse encoder from a user's ``deca_model.tar`` (FLAME; needs
  ``pip install flame_transit[deca]`` for torchvision).
* :func:`encode_batch` for independent photos, :func:`encode_video` for clips (identity once,
  smoothed expression/pose).
* :func:`load_image` normalises every accepted input to ``uint8`` RGB ``(H, W, 3)``.
"""

from __future__ import annotations

from .deca import DecaEncoder, deca_crop
from .encoder import encode, encode_batch, encode_landmarks, resolve_head
from .fit import FitOptions, FitResult, fit_landmarks
from .image_io import load_image
from .landmarks import FaceLandmarks, detect_all_faces, detect_landmarks, face_box, mirror_landmarks
from .overlay import draw_fit
from .video_encoder import encode_video

__all__ = [
    "encode",
    "encode_batch",
    "encode_video",
    "encode_landmarks",
    "resolve_head",
    "DecaEncoder",
    "deca_crop",
    "FitOptions",
    "FitResult",
    "fit_landmarks",
    "load_image",
    "FaceLandmarks",
    "detect_landmarks",
    "detect_all_faces",
    "face_box",
    "mirror_landmarks",
    "draw_fit",
]

