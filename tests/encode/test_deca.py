"""DECA encoder: checkpoint layout and validation (no torchvision needed), the network on a
checkpoint written here in DECA's layout (needs torchvision: skipped without it)."""

from __future__ import annotations

import importlib.util
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

from flame_transit.encode.deca import (
    DECA_NUM_PARAMS,
    deca_crop,
    deca_state_shapes,
    read_deca_checkpoint,
    split_deca_code,
)
from flame_transit.errors import AssetError, CheckpointMismatchError

HAVE_TORCHVISION = importlib.util.find_spec("torchvision") is not None
needs_torchvision = pytest.mark.skipif(
    not HAVE_TORCHVISION,
    reason="torchvision is not installed (pip install flame_transit[deca]); the shared venv has a torch "
    "CPU wheel that PyPI's torchvision does not match",
)


def _deca_state(code: np.ndarray, seed: int = 0, trunk: str = "zeros") -> "OrderedDict[str, torch.Tensor]":
    """A state dict in DECA's E_flame layout whose output is ``code`` for every image when the
    trunk is zero (features 0 → Linear → ReLU → Linear gives the last bias)."""
    g = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for k, shape in deca_state_shapes().items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.zeros((), dtype=torch.long)
        elif k.endswith("running_var") or (k.endswith(".weight") and len(shape) == 1):
            state[k] = torch.ones(shape)
        elif trunk == "random" and k.startswith("encoder.") and len(shape) == 4:
            fan_in = int(np.prod(shape[1:]))
            state[k] = torch.randn(shape, generator=g) * (0.5 / fan_in) ** 0.5
        else:
            state[k] = torch.zeros(shape)
    state["layers.2.bias"] = torch.as_tensor(code, dtype=torch.float32)
    if trunk == "random":
        state["layers.0.weight"] = torch.randn((1024, 2048), generator=g) * 0.02
        state["layers.2.weight"] = torch.randn((DECA_NUM_PARAMS, 1024), generator=g) * 0.02
    return state


def _known_code() -> np.ndarray:
    code = np.zeros(DECA_NUM_PARAMS, np.float32)
    code[:100] = np.linspace(-1, 1, 100)  # shape
    code[100:150] = 0.1  # tex
    code[150:200] = np.linspace(0.5, -0.5, 50)  # exp
    code[200:206] = [0.05, -0.1, 0.02, 0.15, 0.0, 0.0]  # pose: global, jaw
    code[206:209] = [9.0, 0.01, -0.02]  # cam
    code[209:] = 0.3  # light
    return code


def test_layout_facts():
    s = deca_state_shapes()
    # facts from DECA's decalib (ResNet-50 without fc; Linear 2048->1024, ReLU, Linear 1024->236)
    assert s["encoder.layer4.0.downsample.0.weight"] == (2048, 1024, 1, 1)
    assert s["encoder.layer3.5.bn3.running_var"] == (1024,)
    assert s["layers.0.weight"] == (1024, 2048) and s["layers.2.weight"] == (236, 1024)
    assert not any(k.startswith("encoder.fc") for k in s)
    n_params = sum(int(np.prod(v)) for k, v in s.items() if k.startswith("encoder.") and "running" not in k and "num_batches" not in k)
    assert n_params == 25_557_032 - 2048 * 1000 - 1000  # torchvision resnet50 without its fc
    assert DECA_NUM_PARAMS == 236


def test_split_code_order():
    parts = split_deca_code(torch.as_tensor(_known_code())[None])
    assert parts["shape"].shape == (1, 100) and parts["tex"].shape == (1, 50) and parts["exp"].shape == (1, 50)
    assert parts["pose"][0].tolist() == pytest.approx([0.05, -0.1, 0.02, 0.15, 0.0, 0.0])
    assert parts["cam"][0].tolist() == pytest.approx([9.0, 0.01, -0.02])
    assert parts["light"].shape == (1, 9, 3)


@pytest.fixture(scope="module")
def deca_tar(tmp_path_factory):
    path = tmp_path_factory.mktemp("deca") / "deca_model.tar"
    torch.save({"E_flame": _deca_state(_known_code()), "E_detail": {}, "D_detail": {}}, path)
    return path


def test_read_checkpoint(deca_tar):
    state = read_deca_checkpoint(deca_tar)
    assert list(state) == list(deca_state_shapes())
    np.testing.assert_allclose(state["layers.2.bias"].numpy(), _known_code())


def test_read_checkpoint_accepts_dataparallel_prefix_and_bare_state(tmp_path):
    st = _deca_state(_known_code())
    torch.save({"E_flame": OrderedDict(("module." + k, v) for k, v in st.items())}, tmp_path / "dp.tar")
    assert "layers.2.bias" in read_deca_checkpoint(tmp_path / "dp.tar")
    del st["encoder.bn1.num_batches_tracked"]  # old checkpoints lack these buffers
    torch.save(st, tmp_path / "bare.pt")
    assert read_deca_checkpoint(tmp_path / "bare.pt")["encoder.bn1.num_batches_tracked"].item() == 0


def test_bad_checkpoints(tmp_path):
    with pytest.raises(AssetError, match="not found"):
        read_deca_checkpoint(tmp_path / "deca_model.tar")
    with pytest.raises(AssetError, match="folder"):
        read_deca_checkpoint(tmp_path)
    (tmp_path / "junk.tar").write_bytes(b"definitely not a checkpoint")
    with pytest.raises(AssetError, match="junk.tar.*not a readable"):
        read_deca_checkpoint(tmp_path / "junk.tar")
    # a photo given as the checkpoint: one line, without torch's advice to use weights_only=False
    (tmp_path / "face.tar").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(AssetError) as info:
        read_deca_checkpoint(tmp_path / "face.tar")
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    torch.save({"E_detail": {}}, tmp_path / "nodeca.tar")
    with pytest.raises(AssetError, match="E_flame"):
        read_deca_checkpoint(tmp_path / "nodeca.tar")
    torch.save([1, 2, 3], tmp_path / "list.tar")
    with pytest.raises(AssetError, match="list"):
        read_deca_checkpoint(tmp_path / "list.tar")
    st = _deca_state(np.zeros(236))
    st["layers.2.weight"] = torch.zeros(159, 1024)  # a different regressor
    st["layers.2.bias"] = torch.zeros(159)
    torch.save({"E_flame": st}, tmp_path / "other.tar")
    with pytest.raises(CheckpointMismatchError, match="159"):
        read_deca_checkpoint(tmp_path / "other.tar")
    st = _deca_state(np.zeros(236))
    del st["encoder.layer2.1.conv2.weight"]
    torch.save({"E_flame": st}, tmp_path / "missing.tar")
    with pytest.raises(AssetError, match="lacks 1"):
        read_deca_checkpoint(tmp_path / "missing.tar")
    st = _deca_state(np.zeros(236))
    st["encoder.conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save({"E_flame": st}, tmp_path / "shape.tar")
    with pytest.raises(AssetError, match="conv1"):
        read_deca_checkpoint(tmp_path / "shape.tar")


def test_missing_torchvision_message(deca_tar, monkeypatch):
    from flame_transit.encode import DecaEncoder

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    with pytest.raises(ImportError, match=r"pip install flame_transit\[deca\]"):
        DecaEncoder(deca_tar)


def test_open_head_is_refused(deca_tar, open_head):
    from flame_transit.encode import DecaEncoder

    with pytest.raises(CheckpointMismatchError, match="FLAME"):
        DecaEncoder(deca_tar, head=open_head)


def test_deca_crop_geometry():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 90:110] = 255  # a white square centred at (100, 50)
    crop = deca_crop(img, (100.0, 50.0), 40.0, out_size=40)
    assert crop.shape == (40, 40, 3) and crop.dtype == np.float32
    assert crop[20, 20].min() == 1.0 and crop[2, 2].max() == 0.0
    assert crop[10:30, 10:30].mean() > 0.95  # the square fills the middle half
    outside = deca_crop(img, (0.0, 0.0), 40.0, out_size=40)
    assert outside[:15, :15].max() == 0.0  # beyond the image: black


# -- with torchvision ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flame_head_deca(tmp_path_factory):
    from flame_transit.head import load_head
    from tests.helpers import make_flame_arrays, write_flame_npz

    d = tmp_path_factory.mktemp("flame_deca")
    return load_head(write_flame_npz(d / "flame.npz", make_flame_arrays(seed=2)))


@needs_torchvision
def test_deca_encoder_known_output(deca_tar, flame_head_deca, astronaut):
    from flame_transit.encode import DecaEncoder
    from flame_transit.params import project_points

    enc = DecaEncoder(deca_tar, head=flame_head_deca)
    p = enc(astronaut)
    code = _known_code()
    np.testing.assert_allclose(p.shape.numpy(), code[:100], atol=1e-5)
    np.testing.assert_allclose(p.expression.numpy(), code[150:200], atol=1e-5)
    np.testing.assert_allclose(p.pose[[0, 1, 2, 6, 7, 8]].numpy(), code[200:206], atol=1e-5)
    assert float(p.pose[3:6].abs().max()) == 0.0 and float(p.pose[9:].abs().max()) == 0.0
    np.testing.assert_allclose(p.cam.numpy(), code[206:209], atol=1e-5)
    assert p.extras["tex"].shape == (50,) and p.extras["light"].shape == (9, 3)
    assert p.head_name == flame_head_deca.name and p.image_size == (512, 512)
    # the crop is centred on the face; vertices_2d = the camera projection of the FLAME mesh
    lm = p.extras["landmarks"]
    c = p.crop_to_image.numpy()
    assert abs(c[0, 2] - lm[:, 0].mean()) < 30 and abs(c[1, 2] - lm[:, 1].mean()) < 40
    with torch.no_grad():
        v = flame_head_deca(shape=p.shape, expression=p.expression[None], pose=p.pose[None]).vertices[0]
    np.testing.assert_allclose(project_points(v, p.cam, p.crop_to_image)[:, :2].numpy(), p.vertices_2d.numpy(), atol=1e-3)


@needs_torchvision
def test_deca_encoder_runs_a_real_network(tmp_path, astronaut):
    from flame_transit.encode import DecaEncoder

    path = tmp_path / "deca_random.tar"
    torch.save({"E_flame": _deca_state(np.zeros(236), seed=1, trunk="random")}, path)
    enc = DecaEncoder(path)
    a = enc(astronaut)
    b = enc(np.ascontiguousarray(astronaut[:, ::-1]))
    assert torch.isfinite(a.shape).all() and a.vertices_2d is None and a.head_name == ""
    assert not torch.allclose(a.expression, b.expression)  # the output depends on the image
    batch = enc.encode_batch([astronaut, astronaut])
    np.testing.assert_allclose(batch[0].expression.numpy(), a.expression.numpy(), atol=1e-4)
    codes = enc.encode_crops(torch.rand(2, 3, 224, 224))
    assert codes["exp"].shape == (2, 50)


def test_default_checkpoint_comes_from_the_environment(monkeypatch, tmp_path):
    from flame_transit.encode.deca import DECA_ENV_VAR, DecaEncoder
    from flame_transit.errors import AssetError

    monkeypatch.delenv(DECA_ENV_VAR, raising=False)
    with pytest.raises(AssetError, match=DECA_ENV_VAR):
        DecaEncoder()
    monkeypatch.setenv(DECA_ENV_VAR, str(tmp_path / "deca_model.tar"))
    with pytest.raises(AssetError, match="deca_model.tar"):
        DecaEncoder()


@needs_torchvision
def test_animate_with_the_deca_encoder_on_flame(deca_tar, face_flame, astronaut, tmp_path):
    """``animate(..., head=<FLAME pkl>, encoder="deca")``: the paper's encoder in the main call."""
    from flame_transit import animate

    path, _, _ = face_flame
    anim = animate(astronaut, "from sadness to happiness", head=str(path), encoder="deca", deca_model=deca_tar,
                   fps=4, duration=0.5, hold=0.0, size=96, seed=0)
    code = _known_code()
    np.testing.assert_allclose(anim.subject.expression.numpy(), code[150:200], atol=1e-5)  # DECA's own output
    np.testing.assert_allclose(anim.params.shape.numpy()[:100], code[:100], atol=1e-5)
    assert anim.params.expression.shape[1] == 100 and anim.subject.extras["encoder"] != "mediapipe"
    assert anim.frames.shape[1:] == (96, 96, 3)
    anim.save(tmp_path / "deca.npz", layout="deca")
    with np.load(tmp_path / "deca.npz") as z:
        np.testing.assert_allclose(z["shape"], code[:100], atol=1e-5)
