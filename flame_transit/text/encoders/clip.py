"""CLIP's text tower through open_clip (the paper's encoder; extra ``flame_transit[clip]``). The
weights must be on disk (a file, ``$FLAME_TRANSIT_CLIP_WEIGHTS`` or the Hugging Face cache):
missing weights are detected up front, never downloaded.
"""

from __future__ import annotations

import logging
import importlib.util
import os
from pathlib import Path
from typing import Optional, Tuple

import torch

from ...errors import AssetError
from ...io_utils import user_path
from .base import LazyTextEncoder, TextBatch, _as_text_list, _l2n

__all__ = [
    "ClipTextEncoder",
    "clip_weights_path",
    "CLIP_WEIGHTS_ENV_VAR",
]

logger = logging.getLogger(__name__)


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


class ClipTextEncoder(LazyTextEncoder):
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
        super().__init__()
        self._tokenizer = None
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

    def _build(self):
        open_clip = _require_open_clip()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            try:
                model = open_clip.create_model(self.model_name, pretrained=self._weights,
                                               force_quick_gelu=self._quick_gelu, device=self.device)
            except Exception as e:
                raise AssetError(f"open_clip could not build {self.model_name} from "
                                 f"{self._weights or 'random init'}: {e}") from e
        if hasattr(model, "visual"):
            model.visual = None  # the text tower is all we need; free the image tower
        model.eval()
        self._tokenizer = open_clip.get_tokenizer(self.model_name)
        return model, ""

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
