import json
import os
import stat

import pytest

from flame_transit.errors import InputError
from flame_transit.io_utils import (
    DIRECTORY_MARKER,
    atomic_directory,
    atomic_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    is_our_directory,
    prepare_output_path,
)


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "one" and names(tmp_path) == ["a.txt"]
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"


def test_final_file_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "p.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's private 0600


def test_atomic_path_keeps_suffix_and_requires_a_file(tmp_path):
    with atomic_path(tmp_path / "v.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path and tmp.name.startswith(".v.mp4.")
        tmp.write_bytes(b"data")
    assert (tmp_path / "v.mp4").read_bytes() == b"data"
    with pytest.raises(InputError, match="no file"):
        with atomic_path(tmp_path / "w.mp4") as tmp:
            tmp.unlink()
    assert names(tmp_path) == ["v.mp4"]


def test_prepare_output_path_errors(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        prepare_output_path(tmp_path / "f" / "out.npz")
    with pytest.raises(InputError, match="directory"):
        prepare_output_path(tmp_path)
    with pytest.raises(InputError, match="empty"):
        prepare_output_path("")
    with pytest.raises(InputError, match="does not exist"):
        prepare_output_path(tmp_path / "new" / "x.npz", make_parents=False)
    assert prepare_output_path(tmp_path / "new" / "deeper" / "x.npz").parent.is_dir()


def test_atomic_directory_rules(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
        (tmp / DIRECTORY_MARKER).write_text(json.dumps({"format": "flame_transit.obj_sequence"}))
    assert names(target) == ["a", DIRECTORY_MARKER] and is_our_directory(target)
    with atomic_directory(target) as tmp:  # ours: replaced
        (tmp / "b").write_text("2")
    assert names(target) == ["b"] and not is_our_directory(target)
    with pytest.raises(InputError, match="not empty"):  # no longer ours
        with atomic_directory(target):
            pass
    with pytest.raises(ValueError):
        with atomic_directory(target, overwrite=True) as tmp:
            (tmp / "c").write_text("3")
            raise ValueError("crash")
    assert names(target) == ["b"] and names(tmp_path) == ["out"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        with atomic_directory(tmp_path / "file"):
            pass


def test_read_only_target_is_kept(tmp_path):
    import stat

    target = tmp_path / "clip.npz"
    target.write_bytes(b"keep me")
    target.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        with pytest.raises(InputError, match="read-only"):
            atomic_write_bytes(target, b"new")
        assert target.read_bytes() == b"keep me"  # also when running as root
    finally:
        target.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_read_npz_with_header_errors_name_the_writer(tmp_path):
    import json

    import numpy as np

    from flame_transit.errors import AssetError
    from flame_transit.io_utils import read_npz_with_header

    def write(name, **arrays):
        p = tmp_path / name
        np.savez(p, **arrays)
        return p

    ok = write("ok.npz", header_json=np.array(json.dumps({"format": "demo/1", "n": 2})), x=np.arange(2))
    header, arrays = read_npz_with_header(ok, "demo", "Demo.save", "demo/1", AssetError)
    assert header["n"] == 2 and list(arrays) == ["x"]
    missing = write("missing.npz", x=np.arange(2))
    with pytest.raises(AssetError, match="written by Demo.save"):
        read_npz_with_header(missing, "demo", "Demo.save", "demo/1", AssetError)
    garbled = write("garbled.npz", header_json=np.array("{not json"))
    with pytest.raises(AssetError, match="written by Demo.save"):
        read_npz_with_header(garbled, "demo", "Demo.save", "demo/1", AssetError)
    other = write("other.npz", header_json=np.array(json.dumps({"format": "other/3"})))
    with pytest.raises(AssetError, match="format 'other/3', expected 'demo/1'"):
        read_npz_with_header(other, "demo", "Demo.save", "demo/1", AssetError)


def test_load_failure_keeps_short_messages_and_drops_pages():
    from flame_transit.io_utils import load_failure

    assert load_failure(KeyError(105)) == "KeyError: 105"
    page = RuntimeError("Weights only load failed. In PyTorch 2.6 ...\nRe-running `torch.load` with `weights_only` set to `False` ...")
    assert load_failure(page) == "RuntimeError"
    assert load_failure(ValueError("x" * 500)) == "ValueError"
