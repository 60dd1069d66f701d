"""DECA's coarse encoder (FLAME) from a user's ``deca_model.tar``.

DECA (Feng et al., SIGGRAPH 2021) regresses FLAME parameters from a 224x224 face crop. Its
checkpoint is a ``torch.save`` dict; ``checkpoint["E_flame"]`` is the state dict of

* ``encoder.*``: a ResNet-50 trunk in torchvision's layout without the ``fc`` layer
  (``conv1``, ``bn1``, ``layer1`` ... ``layer4``; global average pooling → 2048 features);
* ``layers.0``: ``Linear(2048, 1024)`` → ReLU → ``layers.2``: ``Linear(1024, 236)``.

The 236 outputs are, in order: shape 100, tex 50, exp 50, pose 6 (global, jaw; axis-angle),
cam 3 (weak perspective s, tx, ty), light 27 (9 SH x RGB). The input is RGB in ``[0, 1]``
without mean/std normalisation, cropped square around the face (DECA: the 68-landmark box,
side = mean(width, height) x 1.1 x 1.25; here computed on MediaPipe landmarks, see
:func:`~flame_transit.encode.face_box`) and resized to 224.

DECA's camera is this library's camera (:mod:`flame_transit.params`): crop NDC with y up,
``n = s (X[:2] + t)``. DECA's code and weights are for non-commercial research; the library
bundles neither (see ``assets/README.md``). torchvision is needed for the ResNet-50
(``pip install flame_transit[deca]``) and imported only when the network is built.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import AssetError, CheckpointMismatchError, InputError
from ..io_utils import load_failure, user_path
from .image_io import ImageLike, load_image
from .landmarks import DEFAULT_MAX_FACES, DEFAULT_MAX_SIDE, FaceLandmarks, detect_landmarks, face_box

#: environment variable naming the default ``deca_model.tar``
DECA_ENV_VAR = "FLAME_TRANSIT_DECA_MODEL"

__all__ = [
    "DecaEncoder",
    "DECA_PARAMS",
    "DECA_INPUT_SIZE",
    "deca_crop",
    "deca_state_shapes",
    "read_deca_checkpoint",
    "split_deca_code",
]

#: DECA's parameter vector layout, in order.
DECA_PARAMS: Tuple[Tuple[str, int], ...] = (
    ("shape", 100), ("tex", 50), ("exp", 50), ("pose", 6), ("cam", 3), ("light", 27),
)  # fmt: skip
DECA_NUM_PARAMS = sum(n for _, n in DECA_PARAMS)  # 236
DECA_INPUT_SIZE = 224
_FEATURES = 2048
_HIDDEN = 1024
_TORCHVISION_HINT = "the DECA encoder needs torchvision: pip install flame_transit[deca]"


def deca_state_shapes(num_params: int = DECA_NUM_PARAMS) -> "OrderedDict[str, Tuple[int, ...]]":
    """Key → shape of DECA's ``E_flame`` state dict (ResNet-50 trunk + 2-layer regressor).

    Example:
        >>> s = deca_state_shapes()
        >>> s["encoder.conv1.weight"], s["layers.2.weight"]
        ((64, 3, 7, 7), (236, 1024))
        >>> sum(int(np.prod(v)) for k, v in s.items() if k.startswith("encoder.") and "running" not in k and "num_batches" not in k)
        23508032
    """
    shapes: "OrderedDict[str, Tuple[int, ...]]" = OrderedDict()

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["encoder.conv1.weight"] = (64, 3, 7, 7)
    bn("encoder.bn1", 64)
    inplanes = 64
    for li, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for bi in range(blocks):
            p = f"encoder.layer{li}.{bi}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{p}.bn1", planes)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{p}.bn3", planes * 4)
            if bi == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    shapes["layers.0.weight"] = (_HIDDEN, _FEATURES)
    shapes["layers.0.bias"] = (_HIDDEN,)
    shapes["layers.2.weight"] = (num_params, _HIDDEN)
    shapes["layers.2.bias"] = (num_params,)
    return shapes


def read_deca_checkpoint(path: Union[str, "os.PathLike[str]"]) -> "OrderedDict[str, Any]":
    """Load and validate ``E_flame`` from a DECA checkpoint (no torchvision needed).

    Accepts the full ``deca_model.tar`` (dict with ``E_flame``) or a bare ``E_flame`` state
    dict; a ``module.`` prefix (DataParallel) is removed.

    Raises:
        AssetError: missing/unreadable file, no ``E_flame``, or keys/shapes that are not DECA's.
    """
    import torch

    p = user_path(os.fspath(path))
    if not p.exists():
        raise AssetError(
            f"DECA checkpoint not found: {p}; download deca_model.tar from the DECA project page "
            "(see assets/README.md)"
        )
    if p.is_dir():
        raise AssetError(f"expected the DECA checkpoint file deca_model.tar, got a folder: {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle errors come in many types
        raise AssetError(
            f"{p} is not a readable PyTorch checkpoint ({load_failure(exc)}); "
            "expected DECA's deca_model.tar"
        ) from exc
    if not isinstance(ckpt, Mapping):
        raise AssetError(f"{p} holds a {type(ckpt).__name__}, expected DECA's checkpoint dict with 'E_flame'")
    state = ckpt.get("E_flame", ckpt if "layers.2.weight" in ckpt else None)
    if not isinstance(state, Mapping):
        raise AssetError(f"{p} has no 'E_flame' entry (keys: {sorted(map(str, ckpt))[:8]}); is it DECA's deca_model.tar?")
    state = OrderedDict((str(k)[7:] if str(k).startswith("module.") else str(k), v) for k, v in state.items())
    expected = deca_state_shapes()
    w2 = state.get("layers.2.weight")
    if w2 is not None and hasattr(w2, "shape") and tuple(w2.shape) != expected["layers.2.weight"]:
        raise CheckpointMismatchError(
            f"{p}: E_flame regresses {tuple(w2.shape)[0]} values, DECA's FLAME encoder regresses "
            f"{DECA_NUM_PARAMS} (shape 100, tex 50, exp 50, pose 6, cam 3, light 27); this is a "
            "different model (EMOCA/other DECA variants are not supported)"
        )
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise AssetError(f"{p}: E_flame lacks {len(missing)} DECA keys, e.g. {missing[:3]}")
    for k, shape in expected.items():
        if k in state and shape and tuple(getattr(state[k], "shape", ())) != shape:
            raise AssetError(f"{p}: E_flame[{k!r}] has shape {tuple(state[k].shape)}, DECA's is {shape}")
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros((), dtype=torch.long)
    return OrderedDict((k, state[k]) for k in expected)


def split_deca_code(code: Any) -> Dict[str, Any]:
    """Split DECA's ``(..., 236)`` output into named parts (light reshaped to ``(..., 9, 3)``).

    Example:
        >>> import torch
        >>> parts = split_deca_code(torch.arange(236.0)[None])
        >>> parts["exp"][0, 0].item(), parts["pose"].shape[-1], parts["cam"][0].tolist()
        (150.0, 6, [206.0, 207.0, 208.0])
    """
    if code.shape[-1] != DECA_NUM_PARAMS:
        raise InputError(f"DECA code must have {DECA_NUM_PARAMS} values, got {tuple(code.shape)}")
    out: Dict[str, Any] = {}
    start = 0
    for name, n in DECA_PARAMS:
        out[name] = code[..., start:start + n]
        start += n
    out["light"] = out["light"].reshape(out["light"].shape[:-1] + (9, 3))
    return out


def deca_crop(image: np.ndarray, center: Tuple[float, float], size: float,
              out_size: int = DECA_INPUT_SIZE) -> np.ndarray:
    """Square crop of side ``size`` pixels around ``center``, resized to ``out_size`` (bilinear;
    outside the image is black, like DECA's warp). Returns ``(out, out, 3)`` float32 in [0, 1].

    Example:
        >>> deca_crop(np.full((50, 60, 3), 255, np.uint8), (30.0, 25.0), 100.0, 8)[4, 4].tolist()
        [1.0, 1.0, 1.0]
    """
    from PIL import Image

    img = Image.fromarray(load_image(image))
    k = float(size) / float(out_size)
    x0 = float(center[0]) - float(size) / 2.0
    y0 = float(center[1]) - float(size) / 2.0
    crop = img.transform((out_size, out_size), Image.AFFINE, (k, 0.0, x0, 0.0, k, y0),
                         resample=Image.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(crop, dtype=np.float32) / 255.0


def _build_network(state: Mapping[str, Any]):
    import torch

    try:
        from torchvision.models import resnet50
    except ImportError as exc:
        raise ImportError(f"{_TORCHVISION_HINT} ({exc})") from exc

    class _DecaFlameEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = resnet50(weights=None)
            self.encoder.fc = torch.nn.Identity()  # DECA's trunk ends at the 2048-d pooled features
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(_FEATURES, _HIDDEN), torch.nn.ReLU(), torch.nn.Linear(_HIDDEN, DECA_NUM_PARAMS)
            )

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.layers(self.encoder(images))

    net = _DecaFlameEncoder()
    net.load_state_dict(state, strict=True)
    return net.eval()


class DecaEncoder:
    """DECA's FLAME encoder: photo → :class:`~flame_transit.params.FaceParams`.

    Args:
        checkpoint_path: the user's ``deca_model.tar``.
        head: the FLAME head the parameters are for (``load_head('generic_model.pkl')``; FLAME
            2020 is what DECA was trained with). Needed for ``vertices_2d`` (and ``fit_rms``,
            which also needs a MediaPipe landmark embedding); ``None`` returns parameters only.
        device: torch device.
        scale: crop scale around the face box (DECA: 1.25).

    The crop comes from MediaPipe's landmarks (no FAN/face-alignment dependency).

    Example (needs the checkpoint and torchvision)::

        enc = DecaEncoder("deca_model.tar", head=load_head("generic_model.pkl"))
        params = enc("photo.jpg")          # FaceParams: shape (100,), expression (50,), pose (15,)
    """

    def __init__(self, checkpoint_path: Optional[Union[str, "os.PathLike[str]"]] = None, head: Any = None, *,
                 device: Any = "cpu", scale: float = 1.25) -> None:
        import torch

        if checkpoint_path is None:  # the documented default location
            checkpoint_path = os.environ.get(DECA_ENV_VAR)
            if not checkpoint_path:
                raise AssetError(
                    f"no DECA checkpoint given: pass the path of deca_model.tar or set {DECA_ENV_VAR} "
                    "(see assets/README.md for where to get it)"
                )
        self.checkpoint_path = user_path(os.fspath(checkpoint_path))
        state = read_deca_checkpoint(self.checkpoint_path)
        self.head = None
        if head is not None:
            from .encoder import resolve_head

            self.head = resolve_head(head)
            if self.head.kind != "flame" or self.head.num_shape < 100 or self.head.num_expression < 50:
                raise CheckpointMismatchError(
                    f"DECA predicts FLAME coefficients (100 shape, 50 expression) but head "
                    f"{self.head.name!r} is a {self.head.kind} head with {self.head.num_shape} shape / "
                    f"{self.head.num_expression} expression coordinates; pass your FLAME model, e.g. "
                    "head=load_head('generic_model.pkl')"
                )
        self.scale = float(scale)
        self.device = torch.device(device)
        self.net = _build_network(state).to(self.device)

    # -- network on crops ------------------------------------------------------------------
    def encode_crops(self, crops: Any) -> Dict[str, Any]:
        """Run the network on crops ``(B, 3, 224, 224)`` (or ``(B, 224, 224, 3)``) in ``[0, 1]``.

        Returns DECA's code dict (torch tensors): ``shape (B, 100)``, ``tex``, ``exp (B, 50)``,
        ``pose (B, 6)``, ``cam (B, 3)``, ``light (B, 9, 3)``.
        """
        import torch

        x = torch.as_tensor(np.asarray(crops) if not isinstance(crops, torch.Tensor) else crops, dtype=torch.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3:
            x = x.permute(0, 3, 1, 2)
        if x.ndim != 4 or x.shape[1:] != (3, DECA_INPUT_SIZE, DECA_INPUT_SIZE):
            raise InputError(f"DECA crops must be (B, 3, 224, 224), got {tuple(x.shape)}")
        with torch.no_grad():
            code = self.net(x.to(self.device)).float().cpu()
        return split_deca_code(code)

    # -- photos ----------------------------------------------------------------------------
    def __call__(self, image: ImageLike, **kwargs: Any):
        return self.encode(image, **kwargs)

    def encode(self, image: ImageLike, *, face_index: Optional[int] = None,
               max_num_faces: int = DEFAULT_MAX_FACES, max_side: int = DEFAULT_MAX_SIDE,
               landmarks: Optional[FaceLandmarks] = None):
        """Encode one photo; see the class docstring. ``landmarks`` skips detection."""
        rgb = load_image(image)
        if landmarks is None:
            landmarks = detect_landmarks(rgb, face_index=face_index, max_num_faces=max_num_faces, max_side=max_side)
        center, size = face_box(landmarks.points, scale=self.scale)
        crop = deca_crop(rgb, center, size)
        code = self.encode_crops(crop.transpose(2, 0, 1)[None])
        return self._to_params({k: v[0] for k, v in code.items()}, center, size, rgb.shape[:2], landmarks)

    def encode_batch(self, images: Sequence[ImageLike], **kwargs: Any) -> List[Any]:
        """:meth:`encode` for several photos, one network pass."""
        rgbs = [load_image(im) for im in images]
        lms = [detect_landmarks(r, **kwargs) for r in rgbs]
        boxes = [face_box(lm.points, scale=self.scale) for lm in lms]
        crops = np.stack([deca_crop(r, c, s).transpose(2, 0, 1) for r, (c, s) in zip(rgbs, boxes)])
        code = self.encode_crops(crops)
        return [
            self._to_params({k: v[i] for k, v in code.items()}, boxes[i][0], boxes[i][1], rgbs[i].shape[:2], lms[i])
            for i in range(len(rgbs))
        ]

    def _to_params(self, code: Dict[str, Any], center, size, image_size, landmarks: FaceLandmarks):
        import torch

        from ..head import pose6_to_pose15
        from ..params import FaceParams, crop_to_image_matrix, project_points

        crop = torch.as_tensor(crop_to_image_matrix(center, size), dtype=torch.float32)
        pose = pose6_to_pose15(code["pose"].float())
        extras: Dict[str, object] = {
            "encoder": "deca",
            "tex": code["tex"].clone(),
            "light": code["light"].clone(),
            "landmarks": landmarks.points.astype(np.float32),
            "face_index": int(landmarks.face_index),
            "num_faces": int(landmarks.num_faces),
        }
        vertices_2d = None
        fit_rms = None
        head_name = ""
        if self.head is not None:
            head_name = self.head.name
            with torch.no_grad():
                out = self.head(shape=code["shape"][None], expression=code["exp"][None], pose=pose[None])
            cam = code["cam"].float()
            vertices_2d = project_points(out.vertices[0].float(), cam, crop)[:, :2]
            if out.landmarks is not None:
                fit_rms = _mediapipe_rms(self.head, out.landmarks[0].float(), cam, crop, landmarks)
        return FaceParams(
            shape=code["shape"].clone(),
            expression=code["exp"].clone(),
            pose=pose,
            cam=code["cam"].clone(),
            head_name=head_name,
            image_size=(int(image_size[0]), int(image_size[1])),
            crop_to_image=crop,
            vertices_2d=vertices_2d,
            fit_rms=fit_rms,
            extras=extras,
        )


def _mediapipe_rms(head, model_landmarks, cam, crop, landmarks: FaceLandmarks) -> Optional[float]:
    """2D RMS / face width against MediaPipe, when the head's landmarks are MediaPipe's."""
    from ..params import project_points

    idx = head.assets.meta.get("embedding_landmark_indices")
    if idx is None:
        if model_landmarks.shape[0] != 478:
            return None
        idx = np.arange(478)
    px = project_points(model_landmarks, cam, crop)[:, :2].double().numpy()
    det = landmarks.points[np.asarray(idx, dtype=np.int64), :2]
    return float(np.sqrt(np.mean(np.sum((px - det) ** 2, axis=1)))) / max(landmarks.face_width, 1e-6)
