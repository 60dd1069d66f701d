"""Record MediaPipe's face detections on one machine and replay them on another.

Why: the lent GPU machine runs its own Python image (numpy 2, protobuf 5+, no registry), and
MediaPipe 0.10.21, the last release with the legacy Face Mesh graph, needs numpy < 2 and
protobuf < 5; with its OpenCV it is also larger than what may travel to that machine. The GPU
benchmarks therefore replay the landmarks that MediaPipe found for the same photo on the CPU
machine. Everything after the detection (the head fit, text, transit, head, render, video)
runs for real there. MediaPipe's own passes (two of ~7 ms on a 512² photo on the CPU machine)
are missing from the GPU numbers; in the warm-clip and batch benchmarks they run once per photo
anyway, because detections are memoised by content (``flame_transit._memo``).

Record (on a machine with MediaPipe)::

    python -m benchmarks.device.mediapipe_replay examples/face.jpg

writes ``benchmarks/device/detections.npz``. Replay: put ``benchmarks/device`` and the
repository on ``PYTHONPATH`` and set ``FLAME_TRANSIT_REPLAY_DETECTIONS`` to that file; the
``sitecustomize`` module beside this one then installs the replay in every Python process,
benchmark subprocesses included. A photo whose pixels differ from every recorded one (another
JPEG decoder, one pixel changed by the fresh-photo benchmark) gets the detection of the
recorded photo of the same size whose 16×16 thumbnail differs by under 2 grey levels on
average; any other photo fails with an error naming the file of recordings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_FILE = Path(__file__).with_name("detections.npz")
ENV_VAR = "FLAME_TRANSIT_REPLAY_DETECTIONS"
_THUMB = 16
_THUMB_TOLERANCE = 2.0  # mean absolute difference of thumbnails, grey levels


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((_THUMB, _THUMB), Image.BOX), dtype=np.float32)


def _settings_key(max_num_faces: int, max_side: int, flip_average: bool) -> str:
    return f"{int(max_num_faces)}_{int(max_side)}_{int(bool(flip_average))}"


def record(images: Sequence[str], out: Path = DEFAULT_FILE) -> Path:
    """Detect the faces of ``images`` with every default setting and save them to ``out``."""
    from flame_transit._memo import content_digest
    from flame_transit.encode import landmarks
    from flame_transit.encode.image_io import load_image

    arrays: Dict[str, np.ndarray] = {}
    for i, path in enumerate(images):
        rgb = load_image(path)
        n, side, flip = landmarks.DEFAULT_MAX_FACES, landmarks.DEFAULT_MAX_SIDE, True
        faces = landmarks.detect_all_faces(rgb, max_num_faces=n, max_side=side, flip_average=flip)
        arrays[f"digest_{i}"] = np.array(content_digest(rgb, n, side, flip))
        arrays[f"settings_{i}"] = np.array(_settings_key(n, side, flip))
        arrays[f"shape_{i}"] = np.array(rgb.shape)
        arrays[f"thumb_{i}"] = _thumbnail(rgb)
        arrays[f"faces_{i}"] = np.stack(faces) if faces else np.zeros((0, 478, 3))
        arrays[f"name_{i}"] = np.array(Path(path).name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, count=np.array(len(images)), **arrays)
    tmp.replace(out)
    return out


class _Recordings:
    def __init__(self, path: Path) -> None:
        self.path = path
        with np.load(path) as z:
            self.entries: List[Tuple[str, str, Tuple[int, ...], np.ndarray, np.ndarray, str]] = [
                (str(z[f"digest_{i}"]), str(z[f"settings_{i}"]), tuple(int(s) for s in z[f"shape_{i}"]),
                 z[f"thumb_{i}"], z[f"faces_{i}"], str(z[f"name_{i}"])) for i in range(int(z["count"]))]
        self.fallbacks = 0

    def lookup(self, rgb: np.ndarray, max_num_faces: int, max_side: int, flip_average: bool) -> List[np.ndarray]:
        from flame_transit._memo import content_digest

        settings = _settings_key(max_num_faces, max_side, flip_average)
        digest = content_digest(rgb, int(max_num_faces), int(max_side), bool(flip_average))
        for d, _, _, _, faces, _ in self.entries:
            if d == digest:  # the digest covers the settings too
                return [f.copy() for f in faces]
        thumb = _thumbnail(rgb)
        best: Optional[Tuple[float, np.ndarray]] = None
        for _, s, shape, t, faces, _ in self.entries:
            if s == settings and shape == tuple(rgb.shape):
                diff = float(np.abs(t - thumb).mean())
                if best is None or diff < best[0]:
                    best = (diff, faces)
        if best is not None and best[0] < _THUMB_TOLERANCE:
            self.fallbacks += 1
            return [f.copy() for f in best[1]]
        raise RuntimeError(f"no recorded MediaPipe detection for this {rgb.shape} photo in {self.path} "
                           f"(recorded: {', '.join(e[5] for e in self.entries)}); record it with "
                           "`python -m benchmarks.device.mediapipe_replay PHOTO` on a machine with MediaPipe")


def install(path: Path = DEFAULT_FILE) -> _Recordings:
    """Replace MediaPipe's detection in this process by the recordings in ``path``."""
    from flame_transit.encode import landmarks

    recordings = _Recordings(Path(path))
    landmarks._detect_all_faces = recordings.lookup
    return recordings


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.device.mediapipe_replay", description=__doc__.splitlines()[0])
    p.add_argument("images", nargs="+", help="photos to detect and record")
    p.add_argument("--out", default=str(DEFAULT_FILE))
    args = p.parse_args(argv)
    print(record(args.images, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
