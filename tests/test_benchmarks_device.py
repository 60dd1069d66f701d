"""The GPU machine's MediaPipe replay (benchmarks/device/mediapipe_replay.py): what it records
is what it gives back, a near-identical photo gets its recording, any other photo fails."""

import numpy as np
import pytest

pytest.importorskip("mediapipe")


def test_replay_gives_back_the_recorded_detections(tmp_path, monkeypatch):
    import skimage.data

    from benchmarks.device import mediapipe_replay
    from flame_transit.encode import landmarks

    img = skimage.data.astronaut()
    path = tmp_path / "face.png"
    from PIL import Image

    Image.fromarray(img).save(path)
    monkeypatch.setattr(landmarks, "_DETECTIONS", landmarks.ContentMemo(max_items=4))
    live = landmarks.detect_all_faces(img)
    saved = mediapipe_replay.record([str(path)], tmp_path / "detections.npz")
    assert not list(tmp_path.glob("*.tmp*"))  # written through a temporary file

    monkeypatch.setattr(landmarks, "_detect_all_faces", landmarks._detect_all_faces)  # restored after the test
    recordings = mediapipe_replay.install(saved)
    monkeypatch.setattr(landmarks, "_DETECTIONS", landmarks.ContentMemo(max_items=4))  # no memo hits
    replayed = landmarks.detect_all_faces(img)
    assert len(replayed) == len(live) and all(np.array_equal(a, b) for a, b in zip(replayed, live))

    nudged = img.copy()
    nudged[0, 0] ^= 1  # another decode of the same photo: the recording of the same size
    assert np.array_equal(landmarks.detect_all_faces(nudged)[0], live[0]) and recordings.fallbacks == 1

    with pytest.raises(RuntimeError, match="no recorded MediaPipe detection"):
        landmarks.detect_all_faces(np.ascontiguousarray(img[:, ::-1] // 2))
