"""Shared fixtures of the encoder tests: the public-domain astronaut photo and its encodings
(computed once per session; MediaPipe and the fit are deterministic)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def open_head():
    from flame_transit.encode import resolve_head

    return resolve_head()


@pytest.fixture(scope="session")
def astro_params(astronaut, open_head):
    from flame_transit.encode import encode

    return encode(astronaut, open_head)


@pytest.fixture(scope="session")
def astro_params_flipped(astronaut, open_head):
    from flame_transit.encode import encode

    return encode(np.ascontiguousarray(astronaut[:, ::-1]), open_head)


@pytest.fixture(scope="session")
def astro_params_single(astronaut, open_head):
    """Without flip averaging (one MediaPipe pass), to check the fit itself."""
    from flame_transit.encode import encode

    return encode(astronaut, open_head, flip_average=False)


@pytest.fixture(scope="session")
def two_faces(astronaut) -> np.ndarray:
    """Two faces: a 320 px crop of the astronaut and the same crop at 240 px on its right.

    (MediaPipe's short-range detector letterboxes to 128 px, so wide canvases lose faces;
    this layout is found as two faces, larger on the left.)
    """
    from PIL import Image

    crop = astronaut[20:340, 90:410]
    canvas = np.full((340, 600, 3), 200, np.uint8)
    canvas[10:330, 10:330] = crop
    canvas[10:250, 340:580] = np.asarray(Image.fromarray(crop).resize((240, 240), Image.BILINEAR))
    return canvas
