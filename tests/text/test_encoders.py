"""Text encoders: interface, cache, MiniLM (loaded once per module), CLIP weight detection."""

from __future__ import annotations

import importlib.util
import logging
import time

import numpy as np
import pytest
import torch

from flame_transit.errors import AssetError, InputError
from flame_transit.text import encoders as E
from flame_transit.text.encoders.base import _as_text_list
from flame_transit.text.build_cache import cache_texts

HAS_OPEN_CLIP = importlib.util.find_spec("open_clip") is not None


class CountingEncoder(E.TextEncoder):
    """Deterministic fake backend that counts the texts it encodes."""

    def __init__(self, dim=8, name="count:8"):
        self.dim, self.name = dim, name
        self.calls = []
        self._inner = E.HashTextEncoder(dim)

    def encode(self, texts):
        texts = _as_text_list(texts)
        self.calls.append(list(texts))
        return self._inner.encode(texts)


@pytest.fixture(scope="module")
def minilm():
    return E.SentenceTransformerEncoder()


def test_hash_encoder_contract():
    enc = E.HashTextEncoder(32)
    out = enc.encode(["happy", "sad", "happy"])
    assert out.shape == (3, 32) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-6)
    assert torch.equal(out[0], out[2]) and not torch.equal(out[0], out[1])
    assert enc.encode([]).shape == (0, 32)
    assert enc.encode("happy").shape == (1, 32)
    assert torch.equal(enc.encode(["happy"]), E.HashTextEncoder(32).encode(["happy"]))


@pytest.mark.parametrize("bad", [b"happy", [1, 2], ["ok", None], 3])
def test_encode_rejects_non_text(bad):
    with pytest.raises(InputError):
        E.HashTextEncoder(8).encode(bad)


def test_factory_caches_and_resolves_aliases():
    assert E.get_text_encoder("hash:16") is E.get_text_encoder("hash:16")
    assert E.canonical_encoder_name(None) == "minilm-l6-v2"
    assert E.canonical_encoder_name("all-MiniLM-L6-v2") == "minilm-l6-v2"
    assert E.canonical_encoder_name("clip") == "clip:ViT-B-32/laion2b_s34b_b79k"
    assert E.canonical_encoder_name("clip:ViT-L-14") == "clip:ViT-L-14/laion2b_s34b_b79k"
    with pytest.raises(InputError):
        E.get_text_encoder("no-such-encoder")
    with pytest.raises(InputError):
        E.get_text_encoder("hash:abc")


def test_cached_encoder_hits_do_not_call_backend(tmp_path):
    backend = CountingEncoder()
    cached = E.CachedTextEncoder(backend, files=[])
    a = cached.encode(["happy", "sad"])
    assert backend.calls == [["happy", "sad"]]
    b = cached.encode(["  happy ", "sad", "angry", "angry"])  # whitespace-normalised key
    assert backend.calls[-1] == ["angry"]  # only the miss, once
    assert torch.equal(a, b[:2]) and torch.equal(b[2], b[3])
    assert cached.name == backend.name and cached.dim == backend.dim
    # persistence round trip through the .npz format
    path = cached.save(tmp_path / "c.npz")
    fresh_backend = CountingEncoder()
    fresh = E.CachedTextEncoder(fresh_backend, files=[path])
    assert torch.equal(fresh.encode(["happy", "sad", "angry"]), b[:3])
    assert fresh_backend.calls == []
    assert "happy" in fresh and "sad  " in fresh and "calm" not in fresh


def test_cache_file_for_other_encoder_or_corrupt_is_rejected(tmp_path):
    p = E.write_cache_file(tmp_path / "x.npz", "other:8", ["a"], np.ones((1, 8), np.float32))
    with pytest.raises(AssetError, match="other:8"):
        E.CachedTextEncoder(CountingEncoder(), files=[p])
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(AssetError, match="not a text-embedding cache"):
        E.CachedTextEncoder(CountingEncoder(), files=[bad])
    p2 = E.write_cache_file(tmp_path / "y.npz", "count:8", ["a", "b"], np.ones((1, 8), np.float32))
    with pytest.raises(AssetError, match="do not match"):
        E.CachedTextEncoder(CountingEncoder(), files=[p2])


def test_shipped_minilm_cache_is_fast_and_complete():
    path = E.vocab_cache_path("minilm-l6-v2")
    assert path.is_file()
    assert path.stat().st_size < 4_000_000
    backend = E.SentenceTransformerEncoder()
    t0 = time.perf_counter()
    cached = E.CachedTextEncoder(backend)
    load_s = time.perf_counter() - t0
    texts = cache_texts()
    t0 = time.perf_counter()
    out = cached.encode(texts[:50])
    lookup_s = time.perf_counter() - t0
    assert not backend.loaded, "a known text must not load the model"
    assert out.shape == (50, 384)
    assert torch.allclose(out.norm(dim=1), torch.ones(50), atol=1e-5)
    assert all(t in cached for t in texts), "shipped cache is stale: rebuild it"
    assert load_s < 1.0 and lookup_s < 0.05, (load_s, lookup_s)


def test_shipped_cache_matches_live_minilm(minilm):
    cached = E.CachedTextEncoder(CountingEncoder(384, "minilm-l6-v2"))
    texts = cache_texts()
    sample = texts[:: max(1, len(texts) // 40)]
    live = minilm.encode(sample)
    stored, missing = cached.lookup(sample)
    assert not missing
    assert torch.allclose(live, stored, atol=2e-5), float((live - stored).abs().max())


def test_minilm_contract_and_semantics(minilm):
    out = minilm.encode(["happy", "joyful", "furious", "happy"])
    assert out.shape == (4, 384) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(out[0], out[3])
    assert float(out[0] @ out[1]) > float(out[0] @ out[2])
    assert minilm.name == "minilm-l6-v2" and minilm.dim == 384


def test_clip_without_weights_fails_at_once(monkeypatch, tmp_path):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.delenv(E.CLIP_WEIGHTS_ENV_VAR, raising=False)
    t0 = time.perf_counter()
    with pytest.raises(AssetError) as info:
        E.ClipTextEncoder("ViT-B-32", "laion2b_s34b_b79k")
    assert time.perf_counter() - t0 < 2.0
    assert "not on disk" in str(info.value) and "minilm" in str(info.value)


def test_clip_weights_found_in_hf_cache_layout(monkeypatch, tmp_path):
    import huggingface_hub.constants as hc

    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    (snap / "open_clip_pytorch_model.bin").write_bytes(b"x")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    path, quick, _ = E.clip_weights_path("ViT-B-32", "laion2b_s34b_b79k")
    assert path == str(snap / "open_clip_pytorch_model.bin") and quick is False


def test_default_falls_back_to_minilm_with_warning(monkeypatch, tmp_path, caplog):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("FLAME_TRANSIT_TEXT_ENCODER", "clip")
    E.clear_encoder_cache()
    try:
        with caplog.at_level(logging.WARNING, logger=E.__name__):
            enc = E.get_text_encoder(None)
        assert enc.name == "minilm-l6-v2"
        assert any("falling back" in r.getMessage() for r in caplog.records)
        with pytest.raises(AssetError):
            E.get_text_encoder("clip")  # an explicit name raises instead
    finally:
        E.clear_encoder_cache()


@pytest.mark.skipif(HAS_OPEN_CLIP, reason="open_clip is installed here")
def test_clip_missing_open_clip_says_how_to_install(tmp_path):
    w = tmp_path / "w.bin"
    w.write_bytes(b"x")
    with pytest.raises(AssetError, match=r"flame_transit\[clip\]"):
        E.ClipTextEncoder("ViT-B-32", pretrained=str(w))


@pytest.fixture(scope="module")
def clip_random():
    if not HAS_OPEN_CLIP:
        pytest.skip("open_clip not installed (optional extra flame_transit[clip])")
    return E.ClipTextEncoder("ViT-B-32", pretrained=None, seed=0)


def test_clip_random_init_text_tower(clip_random):
    import open_clip

    assert clip_random.name == "clip:ViT-B-32/random-init" and clip_random.dim == 512
    texts = ["Turn this face from disgust to happiness.", "a sad face"]
    out = clip_random.encode(texts)
    assert out.shape == (2, 512) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    # same as the open_clip tokenizer + text tower directly
    model = clip_random._model
    tok = open_clip.get_tokenizer("ViT-B-32")(texts)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model.encode_text(tok).float(), dim=-1)
    assert torch.allclose(out, ref, atol=1e-5)
    # seeded: a second instance gives the same vectors
    again = E.ClipTextEncoder("ViT-B-32", pretrained=None, seed=0).encode(texts)
    assert torch.allclose(out, again, atol=1e-6)


def test_clip_loads_weights_from_file(clip_random, tmp_path):
    state = {k: v for k, v in clip_random._model.state_dict().items()}
    # the file must hold the full model (open_clip loads visual weights too): rebuild one
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        full = open_clip.create_model("ViT-B-32", pretrained=None)
    assert all(torch.equal(full.state_dict()[k], v) for k, v in state.items())
    path = tmp_path / "clip_vitb32.bin"
    torch.save(full.state_dict(), path)
    enc = E.ClipTextEncoder("ViT-B-32", pretrained=str(path))
    assert enc.name == "clip:ViT-B-32/clip_vitb32"
    texts = ["happy", "angry"]
    assert torch.allclose(enc.encode(texts), clip_random.encode(texts), atol=1e-5)
    # weights= keeps the canonical name that checkpoints store
    E.clear_encoder_cache()
    try:
        named = E.get_text_encoder("clip", weights=str(path))
        assert named.name == "clip:ViT-B-32/laion2b_s34b_b79k" and named.dim == 512
        assert torch.allclose(named.encode(texts), clip_random.encode(texts), atol=1e-5)
    finally:
        E.clear_encoder_cache()


def test_user_cache_persists_vocabulary(monkeypatch, tmp_path):
    monkeypatch.setenv("FLAME_TRANSIT_CACHE_DIR", str(tmp_path))
    backend = CountingEncoder(8, "count:8")
    cached = E.CachedTextEncoder(backend)
    path = cached.persist(["happy", "sad"])
    assert path == tmp_path / "text" / "count_8_vocab.npz" and path.is_file()
    fresh_backend = CountingEncoder(8, "count:8")
    fresh = E.CachedTextEncoder(fresh_backend)
    assert torch.equal(fresh.encode(["sad", "happy"]), cached.encode(["sad", "happy"]))
    assert fresh_backend.calls == []
    assert fresh.persist(["happy"]) is None  # nothing new
    fresh.persist(["angry"])  # merges with what is on disk
    assert len(E.CachedTextEncoder(CountingEncoder(8, "count:8"))) == 3
    monkeypatch.setenv("FLAME_TRANSIT_CACHE_DIR", "none")
    assert E.user_cache_path("count:8") is None
    assert E.CachedTextEncoder(CountingEncoder(8, "count:8")).persist(["x"]) is None
    # a corrupt user cache is ignored with a warning, not fatal
    monkeypatch.setenv("FLAME_TRANSIT_CACHE_DIR", str(tmp_path))
    path.write_bytes(b"garbage")
    assert len(E.CachedTextEncoder(CountingEncoder(8, "count:8"))) == 0


def test_torch_minilm_matches_sentence_transformers():
    # the default encoder runs MiniLM on torch.nn (no `transformers` import: the first unknown
    # word of a process took ~13 s, now ~3.5 s); it must give sentence-transformers' embeddings
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    from flame_transit.text.encoders.minilm import SentenceTransformerEncoder, _minilm_dir, _TorchMiniLM

    texts = ["grouchy", "Turn this face from disgust to happiness.", "a", "weepy, distraught " * 40, "快乐"]
    enc = SentenceTransformerEncoder()
    ours = enc.encode(texts).numpy()
    assert isinstance(enc._model, _TorchMiniLM)
    ref = SentenceTransformer(str(_minilm_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
