"""The GL backend's own passes: the supersampled mouth edges blended in a shader, and frames
drawn (submitted) while the next one is built."""

import dataclasses

import numpy as np
import pytest

from flame_transit.render.backends import gl, gl_shaders
from flame_transit.render.backends.gl_textures import SharedTextures
from flame_transit.render.types import Frame, Layer


@pytest.fixture()
def renderer():
    r = gl.GLRenderer(samples=0)  # no MSAA (a GPU's default): the edge pass is what is tested
    yield r
    r.close()


def _mouth_frame(size: int) -> Frame:
    """A bright photo patch with a dark, slanted "mouth" triangle over it: the photo look's
    lips-over-mouth edge that the mouth pass supersamples."""
    quad = np.array([[4, 4], [size - 4, 4], [size - 4, size - 4], [4, size - 4]], dtype=np.float64)
    patch = Layer("face", "photo", quad, np.array([[0, 1, 2], [0, 2, 3]]), uv=quad, texture="photo",
                  depth_test=False)
    tri = np.array([[0.3 * size, 0.31 * size], [0.77 * size, 0.43 * size], [0.41 * size, 0.69 * size]])
    mouth = Layer("mouth", "lit", tri, np.array([[0, 1, 2]]), depth=np.zeros(3), normal=np.tile([0.0, 0.0, 1.0], (3, 1)),
                  color=np.full((3, 3), 0.05))
    box = (int(0.3 * size) - 3, int(0.31 * size) - 3, int(0.77 * size) + 4, int(0.69 * size) + 4)
    return Frame([patch, mouth], background_texture="photo", edge_box=box)


def _box_filtered(plain: np.ndarray, sub: np.ndarray, k: int) -> np.ndarray:
    """The documented blend in numpy: where a pixel's k*k subsamples spread by more than
    EDGE_SPREAD (largest channel), move it towards their mean, fully at EDGE_SPREAD + EDGE_RAMP."""
    s = sub.reshape(plain.shape[0], k, plain.shape[1], k, 3).astype(np.float64)
    spread = (s.max(axis=(1, 3)) - s.min(axis=(1, 3))).max(axis=-1)
    mean = s.mean(axis=(1, 3))
    a = np.clip((spread - gl_shaders.EDGE_SPREAD) / gl_shaders.EDGE_RAMP, 0.0, 1.0)[..., None]
    out = plain + a * (mean - plain)
    return np.where((spread > gl_shaders.EDGE_SPREAD)[..., None], np.floor(out + 0.5), plain).astype(np.uint8)


def test_mouth_edges_are_the_box_filter_of_the_supersampled_pass(renderer):
    size, k = 96, gl.MOUTH_SUPERSAMPLE
    photo = np.full((size, size, 3), 230, np.uint8)
    photo[:, :, 1] = np.linspace(150, 250, size).astype(np.uint8)  # not flat: the blend mixes real values
    frame = _mouth_frame(size)
    x0, y0, x1, y1 = frame.edge_box

    renderer._begin((size, size), {"photo": photo})
    blended = renderer._draw(frame)
    bw, bh = (x1 - x0) * k, (y1 - y0) * k
    raw = np.frombuffer(renderer._ss_fbo.read(viewport=(0, 0, bw, bh), components=3, alignment=1), np.uint8)
    sub = raw.reshape(bh, bw, 3)[::-1]
    plain = renderer._draw(dataclasses.replace(frame, edge_box=None))
    renderer._end()

    expected = plain.copy()
    expected[y0:y1, x0:x1] = _box_filtered(plain[y0:y1, x0:x1], sub, k)
    changed = np.abs(expected.astype(int) - plain).max(axis=-1) > 0
    assert changed.sum() > 20  # the triangle's edges are blended
    np.testing.assert_allclose(blended, expected, atol=1)  # unorm rounding of the blend unit
    assert (blended[~changed] == plain[~changed]).all()  # nothing else moves, outside the box too


def test_submitted_frames_match_frames_drawn_one_by_one(renderer, open_head, astronaut, astronaut_clip):
    """iter_frames builds frame t while frame t - 1 rasterises: its output must be what drawing
    each frame alone gives (no state of one frame leaks into the next)."""
    from flame_transit.render.scene import build_scene

    img, p = astronaut
    verts = astronaut_clip[[0, 2, 1, 2]]
    streamed = list(renderer.iter_frames(verts, open_head.faces, p, look="photo", photo=img, head=open_head, size=160))
    scene = build_scene(verts, np.asarray(open_head.faces), p, look="photo", photo=img, head=open_head, size=160,
                        source_vertices=None, rest_vertices=None, background=None, color=None, mouth=True,
                        shading_gain=1.0)
    for t, frame in enumerate(streamed):
        with gl.GLRenderer(samples=renderer.samples) as alone:  # a GPU's default would add MSAA
            alone._begin(scene.size, scene.textures)
            np.testing.assert_array_equal(frame, alone._draw(scene.frame(t)))
    assert np.abs(streamed[1].astype(int) - streamed[2]).max() > 50  # the frames differ (jaw open / neutral)


def test_held_frames_are_drawn_once_and_repeated(renderer, open_head, astronaut, astronaut_clip, monkeypatch):
    from flame_transit.render import scene as scene_module

    img, p = astronaut
    verts = astronaut_clip[[0, 0, 0, 2, 2, 1]]
    submitted = []
    submit = type(renderer)._submit
    monkeypatch.setattr(type(renderer), "_submit", lambda self, frame: submitted.append(1) or submit(self, frame))
    held = list(renderer.iter_frames(verts, open_head.faces, p, look="photo", photo=img, head=open_head, size=128))
    assert len(held) == 6 and len(submitted) == 3  # frames 1, 2 and 4 repeat the one before
    assert len({id(f) for f in held}) == 6  # each frame its own array
    edited = []
    for f in renderer.iter_frames(verts, open_head.faces, p, look="photo", photo=img, head=open_head, size=128):
        edited.append(f.copy())
        f[:8] = 255  # a caller drawing on each frame as it comes must not reach the held copies
    np.testing.assert_array_equal(np.stack(edited), np.stack(held))
    monkeypatch.setattr(scene_module.Scene, "repeats", lambda self, t: False)
    drawn = list(renderer.iter_frames(verts, open_head.faces, p, look="photo", photo=img, head=open_head, size=128))
    assert len(submitted) == 12
    np.testing.assert_array_equal(np.stack(held), np.stack(drawn))


def test_a_frame_repeats_only_under_the_same_camera(open_head, astronaut_clip):
    from flame_transit.render.scene import build_scene

    verts = astronaut_clip[[1, 1, 1]]
    cam = np.array([[9.0, 0.0, 0.0], [9.0, 0.0, 0.0], [9.0, 0.01, 0.0]])  # the last frame pans
    scene = build_scene(verts, np.asarray(open_head.faces), {"cam": cam}, look="shaded", size=64, photo=None,
                        head=open_head, source_vertices=None, rest_vertices=None, background=None, color=None,
                        mouth=True, shading_gain=1.0)
    assert [scene.repeats(t) for t in range(3)] == [False, True, False]


def test_background_painted_behind_the_opaque_layers_looks_as_painted_first(renderer):
    """The background texture is drawn where the opaque layers left the depth clear (so that
    llvmpipe skips the covered pixels); the frame must look as if it were painted first:
    here it is, as an ordinary first layer of a frame without a background texture."""
    size = 64
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    ramp = np.zeros((size, size, 3), np.uint8)
    ramp[..., 0] = np.linspace(0, 255, size).astype(np.uint8)[None]
    ramp[..., 2] = 90

    def square(x0, y0, x1, y1):
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)

    two = np.array([[0, 1, 2], [0, 2, 3]])

    def lit(name, xy, depth, colour):
        return Layer(name, "lit", xy, two, depth=np.full(4, depth), normal=np.tile([0.0, 0.0, 1.0], (4, 1)),
                     color=np.tile(colour, (4, 1)))

    # an opaque underlay without depth test (two overlapping halves: the later one wins), two
    # depth-tested layers, a see-through layer over uncovered background, one more behind
    halves = np.concatenate([square(6, 6, 30, 40), square(20, 6, 40, 40)])
    under = Layer("skirt", "photo", halves, np.concatenate([two, two + 4]), uv=halves + np.repeat([[0.0, 0.0], [15.0, 0.0]], 4, axis=0),
                  texture="ramp", depth_test=False)
    layers = [under, lit("near", square(10, 10, 30, 30), 2.0, [0.9, 0.2, 0.1]),
              lit("far", square(20, 20, 50, 50), 1.0, [0.1, 0.8, 0.2]),
              Layer("veil", "photo", square(25, 2, 62, 45), two, uv=square(25, 2, 62, 45), texture="ramp", alpha=0.5,
                    depth_test=False),
              lit("behind", square(15, 15, 60, 60), 0.5, [0.2, 0.3, 0.9])]
    quad = square(0, 0, size, size)
    painted_first = Frame([Layer("background", "photo", quad, two, uv=quad, texture="photo", depth_test=False)] + layers)
    textures = {"photo": photo, "ramp": ramp}
    renderer._begin((size, size), textures)
    got = renderer._draw(Frame(layers, background_texture="photo"))
    want = renderer._draw(painted_first)
    renderer._end()
    assert len(np.unique(got.reshape(-1, 3), axis=0)) > 200  # the photo shows, not one colour
    np.testing.assert_array_equal(got, want)


def _photo_frame(size: int) -> Frame:
    quad = np.array([[2, 2], [size - 2, 2], [size - 2, size - 2], [2, size - 2]], dtype=np.float64)
    return Frame([Layer("face", "photo", quad, np.array([[0, 1, 2], [0, 2, 3]]), uv=quad[:, ::-1], texture="photo",
                        depth_test=False)], background_texture="photo")


def test_textures_are_uploaded_once_per_context_by_content_and_draw_the_same():
    size = 48
    photo = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    first, second, changed = (gl.GLRenderer(samples=0) for _ in range(3))
    try:
        first._begin((size, size), {"photo": photo})
        a = first._draw(_photo_frame(size))
        tex = first._textures["photo"]
        first._end()
        second._begin((size, size), {"photo": photo.copy()})  # the next clip of the same photo
        assert second._textures["photo"] is tex
        b = second._draw(_photo_frame(size))
        second._end()
        photo[size // 2, size // 2] ^= 255  # one pixel changed: another texture
        changed._begin((size, size), {"photo": photo})
        assert changed._textures["photo"] is not tex
        c = changed._draw(_photo_frame(size))
        changed._end()
    finally:
        for r in (first, second, changed):
            r.close()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_shared_textures_in_use_are_not_evicted(monkeypatch):
    """Two clips drawn interleaved (two frame generators) under a budget of one texture:
    neither loses its texture, each draws its own photo, and idle ones go later."""
    size = 32
    monkeypatch.setattr(SharedTextures, "MAX_BYTES", size * size * 4)
    red, blue, green = (np.full((size, size, 3), c, np.uint8) for c in ((200, 10, 10), (10, 10, 200), (10, 200, 10)))
    one, two, three = (gl.GLRenderer(samples=0) for _ in range(3))
    try:
        one._begin((size, size), {"photo": red})
        two._begin((size, size), {"photo": blue})
        for _ in range(2):
            assert tuple(one._draw(_photo_frame(size))[size // 2, size // 2]) == (200, 10, 10)
            assert tuple(two._draw(_photo_frame(size))[size // 2, size // 2]) == (10, 10, 200)
        shared = SharedTextures.of(one.ctx)
        one._end()
        two._end()
        three._begin((size, size), {"photo": green})  # now the idle ones go
        assert tuple(three._draw(_photo_frame(size))[size // 2, size // 2]) == (10, 200, 10)
        # over the budget, only the textures in use are left: green's, linear and nearest
        assert [e[2] for e in shared._entries.values()] == [1, 1]
        three._end()
    finally:
        for r in (one, two, three):
            r.close()


def test_layers_over_keeps_exactly_the_triangles_whose_bounds_meet_the_box():
    rng = np.random.default_rng(3)
    layers = []
    for k in range(4):
        xy = rng.uniform(0, 100, (30, 2))
        faces = rng.integers(0, 30, (40, 3))
        layers.append(Layer(f"l{k}", "photo", xy, faces, uv=xy, texture="photo"))
    layers.append(Layer("far", "photo", np.array([[200.0, 200.0], [210, 200], [200, 210]]), np.array([[0, 1, 2]]),
                        uv=np.zeros((3, 2)), texture="photo"))
    box = (40, 30, 60, 55)
    out = gl._layers_over(Frame(layers), box)
    expected = {}
    for layer in layers:
        tri = layer.xy[layer.faces]
        lo, hi = tri.min(axis=1), tri.max(axis=1)
        meets = (lo[:, 0] <= box[2]) & (hi[:, 0] >= box[0]) & (lo[:, 1] <= box[3]) & (hi[:, 1] >= box[1])
        if meets.any():
            expected[layer.name] = layer.faces[meets]
    assert [layer.name for layer in out.layers] == list(expected)
    for layer in out.layers:
        assert np.array_equal(layer.faces, expected[layer.name])


def test_photo_layers_without_ratio_or_second_texture_draw_the_same_with_the_plain_program(renderer, monkeypatch):
    size = 64
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    other = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    quad = np.array([[3.3, 2.7], [60.1, 5.2], [58.4, 61.0], [4.9, 57.5]])
    uv = quad * 0.93 + 1.7  # resampled: bilinear filtering between texels
    plain = Layer("skirt", "photo", quad, np.array([[0, 1, 2], [0, 2, 3]]), uv=uv, texture="photo", depth_test=False)
    # which program draws what: ratio or a mixed-in second texture need the full one
    assert gl._program(plain) == "plain"
    assert gl._program(dataclasses.replace(plain, texture2="other", mix=0.0)) == "plain"
    assert gl._program(dataclasses.replace(plain, texture2="other", mix=0.3)) == "photo"
    assert gl._program(dataclasses.replace(plain, ratio=np.ones(4))) == "photo"
    assert gl._program(Layer("mouth", "lit", quad, np.array([[0, 1, 2]]))) == "lit"

    frames = [Frame([plain]), Frame([dataclasses.replace(plain, alpha=0.6)], background=(0.2, 0.4, 0.9)),
              Frame([dataclasses.replace(plain, texture2="other", mix=0.0)])]
    renderer._begin((size, size), {"photo": photo, "other": other})
    drawn = [renderer._draw(f) for f in frames]
    monkeypatch.setattr(gl, "_program", lambda layer: "lit" if layer.kind == "lit" else "photo")
    full = [renderer._draw(f) for f in frames]
    renderer._end()
    for a, b in zip(drawn, full):
        assert a.std() > 20  # the photo was drawn, not the clear colour
        np.testing.assert_array_equal(a, b)
