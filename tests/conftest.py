import os

import pytest
import torch

# Two cores shared with the renderer and ffmpeg; many threads only add contention.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def flame_arrays():
    from tests.helpers import make_flame_arrays

    return make_flame_arrays(seed=0)


@pytest.fixture(scope="session")
def flame_pkl(tmp_path_factory, flame_arrays):
    from tests.helpers import write_flame_pickle

    return write_flame_pickle(tmp_path_factory.mktemp("flame") / "generic_model.pkl", flame_arrays)


@pytest.fixture(scope="session")
def user_cache(tmp_path_factory):
    """A fresh per-user cache folder (FLAME_TRANSIT_CACHE_DIR) for the rest of the session."""
    folder = tmp_path_factory.mktemp("user_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLAME_TRANSIT_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def face_flame(tmp_path_factory, user_cache):
    """``(path, arrays, truth)``: a face-shaped FLAME-format pickle built from the open head
    (see ``tests.helpers.make_face_flame_arrays``), its arrays and the known correspondence."""
    from tests.helpers import make_face_flame_arrays, write_flame_pickle

    arrays, truth = make_face_flame_arrays(seed=0)
    path = write_flame_pickle(tmp_path_factory.mktemp("face_flame") / "generic_model.pkl", arrays)
    return path, arrays, truth


# CI explores the same hypothesis examples every run (reproducible failures); locally the
# search stays random so new cases keep being tried.
from hypothesis import settings as _hyp_settings

_hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hyp_settings.load_profile("ci")
