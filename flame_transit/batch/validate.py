"""Is an existing batch output complete? The check behind resuming a batch.

:func:`check_output` opens the file the way a reader would and returns ``(frames, problem)``:
``problem`` is ``None`` for a usable output. A row is skipped on resume only when its output
passes; a torn or corrupt file (a copy cut short, a disk that filled up, a file from elsewhere)
is rendered again.

* ``.mp4`` / ``.gif``: ffmpeg decodes every frame without an error; a video's decoded frames
  match the duration its header declares; a GIF ends with its trailer byte.
* ``.png``: Pillow decodes the whole image.
* ``.npz``: loads without pickles, holds the parameter arrays of
  :func:`~flame_transit.export.save_npz` with one frame count.
* ``.glb``: a glTF 2.0 binary whose declared length is the file's and whose JSON chunk parses.
* a folder (``.obj`` sequence): the manifest names every ``.obj`` file and each is there.

When the frame count of the earlier run is known (the batch report), it must match too.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "clip.npz"
    >>> p.write_bytes(b"PK not really a zip")
    19
    >>> check_output(p)[1]
    'cannot read the .npz: ...'
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from pathlib import Path
from typing import Optional, Tuple, Union

__all__ = ["check_output", "NPZ_KEYS"]

#: arrays every clip ``.npz`` holds, with the time axis first in ``expression``/``pose``/``vertices``
NPZ_KEYS = ("format", "expression", "pose", "vertices", "faces", "fps", "times")

Result = Tuple[Optional[int], Optional[str]]


def check_output(path: Union[str, "os.PathLike[str]"], expected_frames: Optional[int] = None) -> Result:
    """``(frames, problem)`` of an existing output; ``problem`` is ``None`` when it is usable.

    Args:
        path: the row's output (file or ``.obj`` folder).
        expected_frames: frame count recorded by an earlier run, or ``None`` (not checked).

    Returns:
        frames (``None`` for a contact sheet, which is one picture) and a one-line reason when
        the output must be made again (``"missing"`` when there is nothing).
    """
    p = Path(os.fspath(path))
    if not p.exists():
        return None, "missing"
    suffix = p.suffix.lower()
    try:
        if p.is_dir():
            frames, problem = _check_obj_folder(p)
        elif suffix in (".mp4", ".gif"):
            frames, problem = _check_video(p)
        elif suffix == ".png":
            frames, problem = _check_png(p)
        elif suffix == ".npz":
            frames, problem = _check_npz(p)
        elif suffix == ".glb":
            frames, problem = _check_glb(p)
        else:
            return None, f"cannot check a {suffix or 'suffix-less'} file"
    except OSError as exc:
        return None, f"cannot read it: {exc}"
    if problem is None and expected_frames is not None and frames is not None and frames != int(expected_frames):
        problem = f"{frames} frames, the earlier run wrote {int(expected_frames)}"
    return frames, problem


def _check_video(p: Path) -> Result:
    import imageio_ffmpeg

    if p.suffix.lower() == ".gif":
        with open(p, "rb") as fh:
            fh.seek(max(0, p.stat().st_size - 1))
            if fh.read(1) != b";":
                return None, "the GIF has no trailer (cut short)"
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-stats", "-i", str(p), "-map", "0:v:0", "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, timeout=600)
    text = proc.stderr.decode("utf-8", "replace").replace("\r", "\n")
    errors = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("frame=")]
    counts = re.findall(r"frame=\s*(\d+)", text)
    if proc.returncode != 0 or errors or not counts:
        return None, f"ffmpeg cannot decode it: {(errors or ['no frames'])[0].strip()[:200]}"
    frames = int(counts[-1])
    if frames < 1:
        return 0, "no frames"
    if p.suffix.lower() == ".mp4":
        reader = imageio_ffmpeg.read_frames(str(p))
        try:
            meta = next(reader)
        finally:
            reader.close()
        declared = float(meta.get("duration") or 0.0) * float(meta.get("fps") or 0.0)
        if declared > 0 and abs(declared - frames) > 1.5:
            return frames, f"{frames} frames decode, the header declares {declared:.0f}"
    return frames, None


def _check_png(p: Path) -> Result:
    from PIL import Image

    try:
        with Image.open(p) as im:
            im.load()
    except Exception as exc:  # noqa: BLE001 - Pillow raises several types for damaged files
        return None, f"not a readable PNG: {type(exc).__name__}: {exc}"
    return None, None


def _check_npz(p: Path) -> Result:
    import zipfile

    import numpy as np

    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                return None, f"the .npz lacks {', '.join(missing)}"
            lengths = {k: z[k].shape[0] for k in ("expression", "pose", "vertices", "times")}
    except (ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        return None, f"cannot read the .npz: {type(exc).__name__}: {exc}"
    if len(set(lengths.values())) != 1:
        return None, f"the .npz arrays disagree on the frame count: {lengths}"
    return int(lengths["expression"]), None


def _check_glb(p: Path) -> Result:
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(20)
        if len(head) < 20:
            return None, "too short for a .glb"
        magic, version, length, chunk_len, chunk_type = struct.unpack("<4sIIII", head)
        if magic != b"glTF" or version != 2:
            return None, "not a glTF 2.0 binary"
        if length != size:
            return None, f"the header declares {length} bytes, the file has {size} (cut short)"
        if chunk_type != 0x4E4F534A:  # "JSON"
            return None, "the first chunk is not JSON"
        try:
            doc = json.loads(fh.read(chunk_len))
        except ValueError as exc:
            return None, f"its JSON chunk does not parse: {exc}"
    try:  # the animation's time input: one key per frame
        sampler = doc["animations"][0]["samplers"][0]
        frames: Optional[int] = int(doc["accessors"][sampler["input"]]["count"])
    except (KeyError, IndexError, TypeError, ValueError):
        frames = None
    return frames, None


def _check_obj_folder(p: Path) -> Result:
    from ..io_utils import DIRECTORY_MARKER

    try:
        manifest = json.loads((p / DIRECTORY_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, f"no readable {DIRECTORY_MARKER} manifest in the folder"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or not files:
        return None, "the manifest lists no .obj files"
    absent = [f for f in files if not (p / str(f)).is_file() or (p / str(f)).stat().st_size == 0]
    if absent:
        return None, f"{len(absent)} of {len(files)} .obj files missing or empty (first: {absent[0]})"
    return len(files), None
