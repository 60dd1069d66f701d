"""Keep the text tests away from the user's embedding cache (~/.cache/flame_transit)."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_text_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FLAME_TRANSIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "ft_cache"))
