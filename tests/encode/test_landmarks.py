"""MediaPipe detection: pixel landmarks, no face, several faces, large images, mirroring."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from flame_transit.encode import detect_all_faces, detect_landmarks, face_box, mirror_landmarks
from flame_transit.encode.landmarks import mirror_index
from flame_transit.errors import InputError, NoFaceError


def test_astronaut_landmarks_in_pixels(astronaut):
    lm = detect_landmarks(astronaut)
    p = lm.points
    assert p.shape == (478, 3) and lm.image_size == (512, 512) and lm.num_faces == 1
    # the face of the astronaut sits left of centre in the upper half
    assert 150 < p[:, 0].min() and p[:, 0].max() < 300 and 50 < p[:, 1].min() and p[:, 1].max() < 200
    # nose tip (1) nearer the camera than the cheeks (234, 454): smaller z
    assert p[1, 2] < p[234, 2] and p[1, 2] < p[454, 2]
    # subject's left cheek (454) is on the viewer's right
    assert p[454, 0] > p[234, 0]
    assert 60 < lm.face_width < 120


def test_deterministic(astronaut):
    a = detect_landmarks(astronaut).points
    b = detect_landmarks(astronaut.copy()).points
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("image", [np.zeros((200, 200, 3), np.uint8), np.full((64, 300, 3), 128, np.uint8)])
def test_no_face_raises(image):
    with pytest.raises(NoFaceError, match="no face"):
        detect_landmarks(image)
    assert detect_all_faces(image) == []


def test_no_face_in_a_large_image_says_small_faces_are_missed_and_to_crop():
    # a face ~16 px across (examples/face.jpg shrunk) on a 1024 px grey canvas is not found;
    # the message used to suggest only lighting and pose, not cropping
    import os

    from flame_transit.encode import load_image

    photo = load_image(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "face.jpg"))
    canvas = np.full((1024, 1024, 3), 128, np.uint8)
    canvas[500:590, 500:590] = np.asarray(Image.fromarray(photo).resize((90, 90), Image.LANCZOS))
    with pytest.raises(NoFaceError, match=r"narrower than about 31 px .* crop the photo closer to the face") as exc:
        detect_landmarks(canvas)
    assert "1024x1024" in str(exc.value)
    with pytest.raises(NoFaceError) as exc:  # a small image: the face cannot be that small, no hint
        detect_landmarks(np.full((300, 300, 3), 128, np.uint8))
    assert "crop" not in str(exc.value)


def test_several_faces_largest_with_warning(two_faces):
    with pytest.warns(UserWarning, match="2 faces"):
        lm = detect_landmarks(two_faces)
    assert lm.num_faces == 2 and lm.face_index == 0
    assert lm.points[:, 0].mean() < 340  # the big face on the left
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit choice does not warn
        other = detect_landmarks(two_faces, face_index=1)
    assert other.points[:, 0].mean() > 340 and other.face_width < lm.face_width
    with pytest.raises(InputError, match="only 2 face"):
        detect_landmarks(two_faces, face_index=5)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_bad_face_index(astronaut, bad):
    with pytest.raises(InputError, match="face_index"):
        detect_landmarks(astronaut, face_index=bad)


def test_bad_max_num_faces(astronaut):
    with pytest.raises(InputError, match="max_num_faces"):
        detect_all_faces(astronaut, max_num_faces=0)


def test_large_image_downscaled_and_mapped_back(astronaut):
    big = np.asarray(Image.fromarray(astronaut).resize((2048, 2048), Image.BICUBIC))
    lm_big = detect_landmarks(big, max_side=640)
    lm = detect_landmarks(astronaut)
    assert lm_big.image_size == (2048, 2048)
    err = np.linalg.norm(lm_big.points[:, :2] / 4.0 - lm.points[:, :2], axis=1)
    assert np.sqrt(np.mean(err ** 2)) < 0.02 * lm.face_width
    # z is on the x pixel scale too
    dz = lm_big.points[:, 2] / 4.0 - lm.points[:, 2]
    assert np.std(dz) < 0.03 * lm.face_width


def test_non_square_image(astronaut):
    wide = np.full((512, 700, 3), 180, np.uint8)
    wide[:, 94:606] = astronaut
    lm = detect_landmarks(wide)
    ref = detect_landmarks(astronaut)
    err = np.linalg.norm(lm.points[:, :2] - (ref.points[:, :2] + [94, 0]), axis=1)
    assert np.sqrt(np.mean(err ** 2)) < 0.03 * ref.face_width


def test_mirror_index_is_a_pairing():
    mi = mirror_index()
    assert (mi[mi] == np.arange(478)).all()
    assert mi[234] == 454 and mi[33] == 263 and mi[61] == 291 and mi[1] == 1 and mi[468] == 473


def test_flip_average_is_mirror_equivariant(astronaut):
    w = astronaut.shape[1]
    a = detect_landmarks(astronaut).points
    b = detect_landmarks(np.ascontiguousarray(astronaut[:, ::-1])).points
    np.testing.assert_allclose(mirror_landmarks(b, w), a, atol=1e-6)
    # one pass only: MediaPipe is not exactly equivariant
    a1 = detect_landmarks(astronaut, flip_average=False).points
    b1 = detect_landmarks(np.ascontiguousarray(astronaut[:, ::-1]), flip_average=False).points
    assert np.abs(mirror_landmarks(b1, w) - a1).max() > 0.1


def test_face_box_is_deca_like(astronaut):
    lm = detect_landmarks(astronaut)
    (cx, cy), size = face_box(lm.points)
    # box centre between the eyes and the chin, side larger than the face width
    assert lm.points[168, 1] < cy < lm.points[152, 1]
    assert 1.2 * lm.face_width < size < 2.2 * lm.face_width
    (_, _), size2 = face_box(lm.points, scale=2.5)
    assert size2 == pytest.approx(2 * size)


def _on_canvas(face: np.ndarray, size_hw, placements) -> np.ndarray:
    canvas = np.full((*size_hw, 3), 200, np.uint8)
    for x, y, side in placements:
        canvas[y:y + side, x:x + side] = np.asarray(Image.fromarray(face).resize((side, side), Image.BILINEAR))
    return canvas


@pytest.mark.parametrize("size_hw, placement", [
    ((1080, 1920), (500, 50, 980)),   # a ~176 px face in a Full-HD frame
    ((512, 1024), (300, 0, 512)),     # one face in a 2:1 frame
    ((1920, 1080), (200, 600, 700)),  # a 9:16 phone portrait
    # too small for the detector on the whole frame: found on tiles
    ((1024, 1024), (400, 300, 236)),  # a ~42 px face (4 % of the frame)
    ((400, 3000), (1300, 0, 400)),    # a panorama: a ~70 px face in a 3000 px strip
])
def test_small_faces_found_by_the_full_range_detector(astronaut, size_hw, placement):
    # Face Mesh's own short-range detector misses these; the full-range detector + crop finds them
    img = _on_canvas(astronaut, size_hw, [placement])
    lm = detect_landmarks(img)
    x, y, side = placement
    want = np.array([x, y]) + side / 512 * detect_landmarks(astronaut).points[:, :2]
    err = np.linalg.norm(lm.points[:, :2] - want, axis=1).mean()
    assert err < 0.03 * lm.face_width, err


def test_tiles_find_each_small_face_once(astronaut):
    from flame_transit.encode.landmarks import _tiled_detector_boxes

    img = _on_canvas(astronaut, (1024, 1024), [(100, 300, 236), (600, 500, 236)])
    boxes = _tiled_detector_boxes(img)  # half-overlapping tiles see each face more than once
    assert len(boxes) == 2
    assert sorted(round(b[0] + b[2] / 2) // 256 for b in boxes) == [0, 2]  # one box per face
    assert _tiled_detector_boxes(np.full((1024, 1024, 3), 120, np.uint8)) == []


def test_two_faces_side_by_side_wide_frame(astronaut):
    img = _on_canvas(astronaut, (512, 1024), [(0, 0, 512), (560, 50, 400)])
    with pytest.warns(UserWarning, match="2 faces.*face="):
        big = detect_landmarks(img)
    small = detect_landmarks(img, face_index=1)
    assert big.points[:, 0].mean() < 512 < small.points[:, 0].mean()
    assert small.face_width < big.face_width
