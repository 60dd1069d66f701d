"""The backend registry, and a new backend added as one file plus its registration
(tests/render/example_backend.py, the example of docs/CONVENTIONS.md)."""

import numpy as np
import pytest
import torch

from flame_transit.errors import InputError
from flame_transit.params import crop_to_image_matrix
from flame_transit.render import backends, get_renderer, register_backend

TRI = np.array([[-0.05, -0.04, 0.0], [0.06, -0.02, 0.0], [-0.01, 0.07, 0.0]])


@pytest.fixture
def example(monkeypatch):
    """The example backend registered for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(backends, "BACKENDS", dict(backends.BACKENDS))
    register_backend("example", "tests.render.example_backend:ExampleRenderer", aliases=("naive",))
    return get_renderer("example")


def test_registry_names_and_errors(example):
    assert example.name == "example" and get_renderer("Naive ").name == "example"
    assert backends.check_renderer_name("naive") == "naive"
    assert "example" in backends.available_renderers()
    assert get_renderer("auto").name == "gl"  # registered without auto=True
    with pytest.raises(InputError, match="example"):  # the error lists what is registered
        get_renderer("nvdiffrast")
    with pytest.raises(InputError, match="already taken"):
        register_backend("other", "x:Y", aliases=("egl",))
    with pytest.raises(InputError, match="module:Class"):
        register_backend("broken", "no_colon")


def _draws_what_gl_draws(renderer, open_head, astronaut, astronaut_clip, size=64):
    """A flat triangle, then the photo look of the open head (the source frame and a changed
    expression) on a small crop of the astronaut: the same compositing as GL."""
    a = torch.as_tensor(crop_to_image_matrix((20.0, 14.0), 24.0), dtype=torch.float32)
    params = {"cam": [9.0, 0.01, -0.02], "crop_to_image": a, "image_size": (28, 36)}
    kw = dict(look="shaded", background=(0, 0, 0), color=(0.5, 0.5, 0.5))
    ours = renderer.render(TRI, [[0, 1, 2]], params, **kw)
    with get_renderer("gl", samples=0) as gl:
        ref = gl.render(TRI, [[0, 1, 2]], params, **kw)
        assert ours.shape == ref.shape == (28, 36, 3) and ref.max() > 0
        assert (np.abs(ours.astype(int) - ref.astype(int)).max(axis=2) > 3).sum() <= 4
        img, p = astronaut
        small = dict(look="photo", photo=img, head=open_head, size=size)
        ours = renderer.render(astronaut_clip[[0, 2]], open_head.faces, p, **small)
        ref = gl.render(astronaut_clip[[0, 2]], open_head.faces, p, **small)
    diff = np.abs(ours.astype(float) - ref.astype(float))
    assert diff[0].mean() < 1.0 and diff[1].mean() < 2.5


def test_new_backend_draws_what_gl_draws(example, open_head, astronaut, astronaut_clip):
    _draws_what_gl_draws(example, open_head, astronaut, astronaut_clip, size=32)


def test_pytorch3d_backend_logic_matches_gl_on_a_stand_in(monkeypatch, open_head, astronaut, astronaut_clip):
    """The PyTorch3D backend's own code (NDC conversion) on a stand-in rasteriser."""
    from . import fake_pytorch3d

    fake_pytorch3d.install(monkeypatch)
    p3d = get_renderer("pytorch3d", device="cpu")
    assert p3d.name == "pytorch3d"
    _draws_what_gl_draws(p3d, open_head, astronaut, astronaut_clip)


def test_pytorch3d_batch_of_layers_is_each_layer_alone(monkeypatch):
    """One rasteriser call for all layers of a frame gives each layer's own faces and pixels."""
    from . import fake_pytorch3d
    from .layer_batches import check_batch_is_each_layer_alone

    fake_pytorch3d.install(monkeypatch)
    check_batch_is_each_layer_alone(get_renderer("pytorch3d", device="cpu"))


def test_hidden_layers_drawn_anyway_change_nothing(example, open_head, astronaut, astronaut_clip, monkeypatch):
    """A GPU device draws layers no pixel shows (asking would wait for the device): the frames
    are the ones a CPU device gets by skipping them."""
    img, p = astronaut
    calls = []
    colour = type(example)._layer_colour
    monkeypatch.setattr(type(example), "_layer_colour", lambda self, *a: calls.append(1) or colour(self, *a))
    frames = {}
    for skip in (True, False):
        example.skip_hidden_layers = skip
        calls.clear()
        frames[skip] = example.render(astronaut_clip[[0, 2]], open_head.faces, p, look="photo", photo=img,
                                      head=open_head, size=32)
        frames[skip, "calls"] = len(calls)
    assert frames[False, "calls"] > frames[True, "calls"]  # some layer was hidden
    np.testing.assert_array_equal(frames[True], frames[False])
