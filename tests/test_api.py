"""animate() end to end: parameters, rendering on the photo, saving, errors, determinism."""

import json
import os
import stat

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flame_transit import animate
from flame_transit.api import check_output_path
from flame_transit.errors import FlameTransitError, InputError, RendererUnavailableError

PHOTO = os.path.join(os.path.dirname(__file__), "..", "examples", "face.jpg")


@pytest.fixture(scope="module")
def photo_anim():
    return animate(PHOTO, "turn this face from disgust to happiness", fps=10, duration=0.6, hold=0.0, size=256)


@pytest.fixture(scope="module")
def shaded_anim():
    return animate(None, "from sadness to surprise", fps=10, duration=0.5, hold=0.0, size=128)


def test_parameters_and_geometry(photo_anim):
    a = photo_anim
    T, E = a.params.expression.shape
    assert T == a.num_frames == 7 and E == a.head.num_expression
    assert a.params.pose.shape == (T, 15)
    assert a.vertices.shape == (T, a.head.num_vertices, 3) and a.vertices.dtype == np.float32
    assert a.faces.shape[1] == 3
    assert [s.label for s in a.instruction.segments] == ["disgust", "happiness"]
    names = list(a.head.expression_names)
    first, last = a.params.expression[0], a.params.expression[-1]
    # the clip starts at disgust (AU9/AU10 nose-lip) and ends at happiness (AU12 lip corners)
    assert first[names.index("AU9")] > last[names.index("AU9")]
    assert last[names.index("AU12")] > first[names.index("AU12")] + 0.3
    # identity is held fixed through the clip
    assert a.params.shape.ndim == 1 or torch.allclose(a.params.shape, a.params.shape[:1].expand_as(a.params.shape))


def test_frames_render_photo_sized(photo_anim):
    frames = photo_anim.frames
    assert frames.shape == (photo_anim.num_frames, 256, 256, 3) and frames.dtype == np.uint8
    # the face changes over the clip
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.2


def test_start_from_photo_reproduces_photo():
    a = animate(PHOTO, "make this face sad", start="photo", fps=10, duration=0.3, hold=0.0, size=256)
    from flame_transit.api import frame_face
    from flame_transit.encode import encode, load_image

    image = load_image(PHOTO)
    crop, subject = frame_face(image, encode(image, a.head), 256)
    frame0 = a.frames[0].astype(np.float64)
    # outside the mouth (mouth box from the fitted lips) the first frame is the photo
    lips = subject.vertices_2d[[61, 291, 0, 17]].numpy()
    x0, y0 = lips.min(0) - 6
    x1, y1 = lips.max(0) + 6
    mask = np.ones(frame0.shape[:2], bool)
    mask[int(y0):int(y1) + 1, int(x0):int(x1) + 1] = False
    err = np.abs(frame0 - crop.astype(np.float64))[mask].mean()
    assert err < 2.0, f"frame 0 differs from the photo by {err:.2f} grey levels outside the mouth"


@pytest.mark.parametrize("instruction", ["make her smile", "make this face look disgusted"])
def test_single_target_starts_from_the_photo(instruction):
    # docs/INSTRUCTIONS.md: a single step is a target, the clip starts from the face in the photo
    a = animate(PHOTO, instruction, fps=10, duration=0.3, hold=0.0, size=64)
    assert a.trajectory.labels[0] == "photo" and len(a.trajectory.labels) == 2
    assert a.describe().startswith("photo -> ")
    subject = a.subject.expression.numpy()
    np.testing.assert_allclose(a.params.expression[0].numpy(), subject, atol=1e-5)
    assert np.abs(a.params.expression[-1].numpy() - subject).max() > 0.3  # it moves to the target
    # asked for explicitly, "first" still makes a still of the target
    still = animate(PHOTO, instruction, fps=10, duration=0.3, hold=0.0, size=64, start="first")
    assert still.trajectory.labels == still.anchors.labels
    np.testing.assert_allclose(still.params.expression[0].numpy(), still.params.expression[-1].numpy())


def test_head_without_expression_basis_is_named(tmp_path, flame_arrays):
    from tests.helpers import write_flame_npz

    shape_only = dict(flame_arrays, shapedirs=flame_arrays["shapedirs"][:, :, :10])
    path = write_flame_npz(tmp_path / "shape_only.npz", shape_only)
    with pytest.raises(InputError, match="no expression coordinates"):  # was "Anchors.expression must be (K, E)"
        animate(None, "from sad to happy", head=str(path))


def test_upside_down_photo_is_animated_upright():
    from flame_transit.encode import load_image

    upside_down = np.ascontiguousarray(load_image(PHOTO)[::-1, ::-1])
    with pytest.warns(UserWarning, match="upside down"):
        a = animate(upside_down, "from sad to happy", fps=10, duration=0.3, hold=0.0, size=64)
    assert "quarter_turns" not in a.subject.extras  # encoded again on the upright photo
    roll = float(a.subject.pose[2])  # axis-angle z of the global rotation: the head's roll
    assert abs(roll) < 0.3


def test_sequences_still_start_on_the_first_expression(photo_anim):
    assert photo_anim.trajectory.labels == ["disgust", "happiness"]
    assert photo_anim.describe().startswith("disgust -> happiness,")


def test_same_seed_same_result_and_seed_changes_sampling():
    a = animate(None, "from anger to fear", seed=3, fps=8, duration=0.25, hold=0.0)
    b = animate(None, "from anger to fear", seed=3, fps=8, duration=0.25, hold=0.0)
    torch.testing.assert_close(a.params.expression, b.params.expression)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    c = animate(None, "from anger to fear", seed=4, fps=8, duration=0.25, hold=0.0)
    assert not torch.allclose(a.params.expression, c.params.expression)  # the CVAE samples


def test_save_all_formats(tmp_path, shaded_anim):
    import imageio.v3 as iio
    import trimesh

    a = shaded_anim
    a.save(tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").stat().st_size > 1000  # frame count: test_mp4_readable_with_frame_count
    a.save(tmp_path / "clip.gif")
    a.save(tmp_path / "sheet.png")
    assert iio.imread(tmp_path / "sheet.png").ndim == 3
    a.save(tmp_path / "seq.npz")
    from flame_transit.export import load_npz

    back = load_npz(tmp_path / "seq.npz")
    np.testing.assert_allclose(back.vertices, a.vertices, atol=1e-6)
    assert back.instruction == "from sadness to surprise" and back.head_name == a.head.name
    a.save(tmp_path / "anim.glb")
    scene = trimesh.load(tmp_path / "anim.glb")
    mesh = next(iter(scene.geometry.values())) if hasattr(scene, "geometry") else scene
    assert len(mesh.faces) == len(a.mesh_faces)  # the whole head: skin, eyes, mouth
    gltf = _glb_json(tmp_path / "anim.glb")
    assert len(gltf["meshes"][0]["primitives"][0]["targets"]) == len(a.au_names)  # one per AU, named
    a.save(tmp_path / "curves.csv")
    assert (tmp_path / "curves.csv").read_text().count("\n") == a.num_frames + 1
    a.save(str(tmp_path / "meshes") + "/")
    assert len(list((tmp_path / "meshes").glob("*.obj"))) == a.num_frames
    a.save_plot(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def _glb_json(path):
    import struct

    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20:20 + length])


def test_mp4_readable_with_frame_count(tmp_path, shaded_anim):
    import imageio.v2 as iio2

    shaded_anim.save(tmp_path / "c.mp4")
    reader = iio2.get_reader(tmp_path / "c.mp4", format="FFMPEG")
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == shaded_anim.num_frames
    assert frames[0].shape[:2] == (128, 128)


@pytest.mark.parametrize("kwargs, message", [
    (dict(fps=0), "fps"), (dict(fps=-3), "fps"), (dict(duration=0), "duration"),
    (dict(duration=-1.0), "duration"), (dict(fps=float("nan")), "fps"), (dict(hold=-1), "hold"),
    (dict(look="cartoon"), "look"), (dict(size=3), "size"), (dict(seed="x"), "seed"), (dict(seed=2**64), "64 bits"),
    (dict(timing="bouncy"), "timing"), (dict(fps=1e-9), "fps must be at least"),
    (dict(temperature=1e30), "temperature must be"), (dict(temperature=-1), "temperature"),
    (dict(renderer="vulkan"), "unknown renderer"), (dict(framing="wide"), "framing"),
    (dict(face=-2), "face must be"), (dict(start="middle"), "start must be"),
    (dict(text_encoder="minlm"), "unknown text encoder"), (dict(text_encoder=5), "text_encoder must be"),
])
def test_bad_options(kwargs, message, monkeypatch):
    import flame_transit.api as api

    def no_work(*a, **k):  # every option is checked before any work
        raise AssertionError("encoding or loading started before the options were checked")

    monkeypatch.setattr(api, "_bundled_head", no_work)
    with pytest.raises(InputError, match=message):
        animate(None, "from sadness to joy", **kwargs)


def test_bad_instruction_and_image(tmp_path):
    from flame_transit.errors import InstructionError

    with pytest.raises(InstructionError):
        animate(None, "   ")
    with pytest.raises(InputError):
        animate(None, 42)
    with pytest.raises(FlameTransitError, match="nope.jpg"):
        animate(tmp_path / "nope.jpg", "from sad to happy")
    blank = tmp_path / "blank.png"
    import imageio.v3 as iio

    iio.imwrite(blank, np.full((64, 64, 3), 128, np.uint8))
    from flame_transit.errors import NoFaceError

    with pytest.raises(NoFaceError):
        animate(blank, "from sad to happy")


def test_bad_outputs_leave_nothing(tmp_path, shaded_anim):
    with pytest.raises(InputError, match="suffix"):
        shaded_anim.save(tmp_path / "clip.avi")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(locked, os.W_OK):  # running as root: permissions do not bind
            pytest.skip("permission bits are not enforced for this user")
        with pytest.raises(InputError, match="writ"):
            shaded_anim.save(locked / "clip.mp4")
    finally:
        locked.chmod(stat.S_IRWXU)
    assert list(locked.iterdir()) == []
    parent_is_file = tmp_path / "file.txt"
    parent_is_file.write_text("x")
    with pytest.raises(InputError):
        shaded_anim.save(parent_is_file / "clip.mp4")


def test_render_output_check():
    with pytest.raises(InputError, match="suffix"):
        check_output_path("clip.npz", kind="render")
    with pytest.raises(InputError, match="render writes a file"):
        check_output_path("folder/", kind="render")


def test_renderer_that_cannot_start(monkeypatch, tmp_path):
    import moderngl

    from flame_transit.render.backends import gl as gl_mod

    def broken(*a, **k):
        raise Exception("EGL: libEGL.so.1 not found")

    monkeypatch.setattr(moderngl, "create_standalone_context", broken)
    monkeypatch.setattr(gl_mod, "_CONTEXTS", {})  # no context cached earlier in this process
    a = animate(None, "from sadness to joy", fps=5, duration=0.2, hold=0.0, size=64, renderer="gl")
    with pytest.raises(RendererUnavailableError, match="libegl1"):
        a.save(tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_fuzz_instructions_give_result_or_clear_error(text):
    try:
        a = animate(None, text, fps=4, duration=0.25, hold=0.0)
    except FlameTransitError:
        return
    assert a.num_frames >= 1 and np.isfinite(a.vertices).all()


def test_face_picks_which_face_of_several():
    from PIL import Image

    face = np.asarray(Image.open(os.path.join(os.path.dirname(__file__), "..", "examples", "face.jpg")).convert("RGB"))
    canvas = np.full((512, 1024, 3), 200, np.uint8)
    canvas[:, :512] = face
    canvas[50:450, 560:960] = np.asarray(Image.fromarray(face).resize((400, 400)))
    opts = dict(look="shaded", fps=5, duration=0.2, size=64)
    with pytest.warns(UserWarning, match="face=0..1"):
        a = animate(canvas, "from sad to happy", **opts)
    b = animate(canvas, "from sad to happy", face=1, **opts)
    assert b.subject.vertices_2d[:, 0].mean() > 512 > a.subject.vertices_2d[:, 0].mean()
    for bad in (-1, 1.0, "1", True):
        with pytest.raises(InputError, match="face must be"):
            animate(canvas, "from sad to happy", face=bad, **opts)


def test_exports_write_the_whole_head_and_name_it(tmp_path):
    import struct

    anim = animate(None, "from sad to happy", fps=5, duration=0.4, look="shaded", size=64)
    faces = anim.mesh_faces
    assert len(faces) > len(anim.faces)
    # every vertex but MediaPipe's ten iris landmark points (468-477) is in a triangle
    unused = set(range(anim.head.num_vertices)) - set(np.unique(faces).tolist())
    assert unused <= set(range(468, 478)), sorted(unused)
    glb = anim.save(tmp_path / "clip.glb")
    blob = glb.read_bytes()
    n = struct.unpack("<I", blob[12:16])[0]
    tree = json.loads(blob[20:20 + n])
    assert tree["scenes"][0]["extras"]["head_name"] == anim.head.name != ""
    prim = tree["meshes"][0]["primitives"][0]
    assert tree["accessors"][prim["indices"]]["count"] == 3 * len(faces)
    with np.load(anim.save(tmp_path / "clip.npz")) as z:
        assert z["faces"].shape == faces.shape


def test_streamed_frames_are_copied_into_one_array():
    from flame_transit.api import _into_one_array

    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(5)]
    out = _into_one_array(iter(frames), 5)
    np.testing.assert_array_equal(out, np.stack(frames))
    frames[0][:] = 99  # a copy: the renderer may reuse its buffers
    assert out[0].max() == 0
    with pytest.raises(RuntimeError, match="4 frames for a 5-frame"):
        _into_one_array(iter(frames[:4]), 5)
    with pytest.raises(RuntimeError, match="more than 3 frames for a 3-frame"):
        _into_one_array(iter(frames), 3)


def test_frames_a_video_rendered_serve_the_sheet_and_frames(tmp_path, monkeypatch):
    import flame_transit.render as render

    anim = animate(PHOTO, "from sadness to surprise", fps=10, duration=0.5, hold=0.0, size=96)
    reference = animate(PHOTO, "from sadness to surprise", fps=10, duration=0.5, hold=0.0, size=96).frames
    anim.save(tmp_path / "clip.mp4")

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(render, "render_frames", no_render)
    anim.save(tmp_path / "sheet.png")
    frames = anim.frames
    assert frames.shape == reference.shape and np.array_equal(frames, reference)
    assert np.array_equal(np.stack(list(anim.iter_frames())), reference)
    anim.save(tmp_path / "again.mp4")  # from the held frames too
