"""Atomic file and directory writes.

Nothing flame_transit writes is ever left half-written: every output is first written to a
temporary name **in the target folder** (same file system, so the final ``os.replace`` is an
atomic rename) and only renamed into place once complete. On any error the temporary is removed
and an existing file at the target stays untouched.

Helpers:

* :func:`atomic_write` -- context manager yielding an open file object;
* :func:`atomic_path` -- context manager yielding a temporary *path* with the target's suffix,
  for writers that insist on a file name (ffmpeg, matplotlib, Pillow);
* :func:`atomic_write_bytes` / :func:`atomic_write_text` -- one-shot versions;
* :func:`atomic_directory` -- context manager yielding a temporary directory that replaces the
  target directory on success (used for ``.obj`` sequences);
* :func:`prepare_output_path` -- the checks they all share (parent folder exists or can be
  created, target is not a folder), raising :class:`~flame_transit.errors.InputError` with a
  message that names the path.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(d / "hello.txt", "w") as f:
    ...     _ = f.write("hi")
    >>> (d / "hello.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('hi', ['hello.txt'])
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import IO, Any, Dict, Iterator, Optional, Tuple, Type, Union

from .errors import InputError

__all__ = [
    "PathLike",
    "user_path",
    "Terminated",
    "install_signal_handlers",
    "signals_deferred",
    "prepare_output_path",
    "atomic_write",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_directory",
    "DIRECTORY_MARKER",
    "is_our_directory",
    "read_npz",
    "read_npz_with_header",
    "load_failure",
    "user_cache_dir",
    "CACHE_DIR_ENV_VAR",
]

PathLike = Union[str, "os.PathLike[str]"]

#: name of the manifest file that marks a directory as written by flame_transit
DIRECTORY_MARKER = "sequence.json"


class Terminated(BaseException):
    """SIGTERM, raised where the program is (like KeyboardInterrupt for SIGINT), so half-written
    outputs are cleaned up on the way out: the default action kills the process before any
    ``finally`` runs."""


_deferral = {"depth": 0, "pending": None}


def _on_signal(signum: int, frame: Any) -> None:
    exc = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    if _deferral["depth"]:
        _deferral["pending"] = exc
        return
    raise exc


def install_signal_handlers() -> Dict[int, Any]:
    """SIGINT -> KeyboardInterrupt, SIGTERM -> :class:`Terminated`, both held inside
    :func:`signals_deferred`. Returns the previous handlers (for ``signal.signal``); empty when
    not called from the main thread."""
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    except ValueError:  # not the main thread: leave the process's handlers alone
        for sig, old in previous.items():
            signal.signal(sig, old)
        return {}
    return previous


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT / SIGTERM (as installed by :func:`install_signal_handlers`) while the block
    runs and raise them after it: for steps that must not be torn in two, such as starting a
    child process whose handle the caller must own to stop it."""
    _deferral["depth"] += 1
    try:
        yield
    finally:
        _deferral["depth"] -= 1
        pending = _deferral["pending"]
        if pending is not None and _deferral["depth"] == 0:
            _deferral["pending"] = None
            raise pending


def user_path(path: PathLike) -> Path:
    """``path`` with a leading ``~`` / ``~user`` expanded; an unknown user is an InputError
    (``Path.expanduser`` raises a bare RuntimeError).

    Example:
        >>> user_path("~/x") == Path.home() / "x"
        True
    """
    try:
        return Path(os.fspath(path)).expanduser()
    except RuntimeError:
        raise InputError(f"cannot expand {os.fspath(path)!r}: no such user's home folder; write the "
                         "full path (or ./~... for a name that starts with ~)") from None
    except TypeError:
        raise InputError(f"expected a file path, got {type(path).__name__}") from None


#: environment variable naming the per-user cache folder (``none`` turns the cache off)
CACHE_DIR_ENV_VAR = "FLAME_TRANSIT_CACHE_DIR"


def user_cache_dir(*parts: str) -> Optional[Path]:
    """The per-user cache folder ``$FLAME_TRANSIT_CACHE_DIR`` (``"none"`` turns it off: None),
    else ``$XDG_CACHE_HOME/flame_transit`` or ``~/.cache/flame_transit``, joined with ``parts``.

    Example:
        >>> import os
        >>> os.environ["FLAME_TRANSIT_CACHE_DIR"] = "/tmp/ft_cache"
        >>> str(user_cache_dir("heads"))
        '/tmp/ft_cache/heads'
        >>> del os.environ["FLAME_TRANSIT_CACHE_DIR"]
    """
    root = os.environ.get(CACHE_DIR_ENV_VAR)
    if root is not None and root.strip().lower() in ("", "none", "0", "off"):
        return None
    if root is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(str(user_path("~")), ".cache")
        root = os.path.join(base, "flame_transit")
    return user_path(root).joinpath(*parts)


def _describe_os_error(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def prepare_output_path(path: PathLike, *, make_parents: bool = True) -> Path:
    """Check that ``path`` can be written as a file and return it as an absolute :class:`Path`.

    Creates missing parent folders when ``make_parents`` is true.

    Raises:
        InputError: the path is empty, names an existing directory or a read-only file, its
            parent is a file, or the parent folder cannot be created or written.
    """
    if path is None or str(path) == "":
        raise InputError("output path is empty; give a file name such as 'out/anim.mp4'")
    p = user_path(os.fspath(path))
    if p.is_dir():
        raise InputError(f"output path {p} is an existing directory; give a file name inside it")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError(f"cannot write {p}: its parent {parent} is a file, not a folder")
    if not parent.exists():
        if not make_parents:
            raise InputError(f"cannot write {p}: folder {parent} does not exist; create it first")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create folder {parent} for {p.name}: {_describe_os_error(exc)}; "
                "choose a writable location"
            ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {p}: folder {parent} is not writable; choose another location")
    if p.is_file() and not p.stat().st_mode & 0o222:
        # the rename that replaces a target ignores its mode bits (and root ignores them anyway):
        # a file someone marked read-only is kept
        raise InputError(f"{p} exists and is read-only; make it writable (chmod u+w) to replace it, "
                         "or choose another name")
    return p.absolute()


def _umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _temp_name(target: Path, *, directory: bool = False) -> Path:
    # keep the target's suffix last so that suffix-sniffing writers (ffmpeg) pick the format
    prefix = f".{target.name}."
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
        mode = 0o777
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp" + target.suffix, dir=target.parent)
        os.close(fd)
        tmp, mode = Path(name), 0o666
    # mkstemp/mkdtemp create private (0600/0700) entries; give the result ordinary permissions
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode & ~_umask())
    return tmp


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: PathLike, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (same suffix); rename it to ``path`` on success.

    The temporary file exists (empty) when yielded; the writer may replace or overwrite it.
    If the block raises, or leaves no file behind, nothing is renamed and the target is untouched.
    """
    target = prepare_output_path(path, make_parents=make_parents)
    tmp: Optional[Path] = None
    try:
        with signals_deferred():  # a signal raised here finds `tmp` set and cleans it up
            try:
                tmp = _temp_name(target)
            except OSError as exc:
                raise InputError(f"cannot write in {target.parent}: {_describe_os_error(exc)}") from exc
        yield tmp
        if not tmp.exists():
            raise InputError(f"writing {target} produced no file")
        os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            _unlink_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", *, make_parents: bool = True, **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; rename it over ``path`` on success.

    Args:
        path: the final file name.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8 unless ``encoding`` is given).
        make_parents: create missing parent folders.
        open_kwargs: passed to :func:`open`.
    """
    if mode not in ("w", "wb", "wt"):
        raise InputError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path, make_parents=make_parents) as tmp:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            with contextlib.suppress(OSError):
                os.fsync(handle.fileno())


def atomic_write_bytes(path: PathLike, data: bytes, **kwargs: Any) -> Path:
    """Write ``data`` to ``path`` atomically; returns the absolute path."""
    with atomic_write(path, "wb", **kwargs) as handle:
        handle.write(data)
    return user_path(os.fspath(path)).absolute()


def atomic_write_text(path: PathLike, text: str, **kwargs: Any) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the absolute path."""
    with atomic_write(path, "w", **kwargs) as handle:
        handle.write(text)
    return user_path(os.fspath(path)).absolute()


def _read_marker(directory: Path) -> Optional[dict]:
    marker = directory / DIRECTORY_MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and str(data.get("format", "")).startswith("flame_transit") else None


def is_our_directory(path: PathLike) -> bool:
    """True if ``path`` is a directory holding a flame_transit manifest (:data:`DIRECTORY_MARKER`)."""
    p = user_path(os.fspath(path))
    return p.is_dir() and _read_marker(p) is not None


@contextlib.contextmanager
def atomic_directory(path: PathLike, *, overwrite: bool = False, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; on success it replaces ``path``.

    An existing ``path`` is replaced only if it is empty, was written by flame_transit (holds a
    :data:`DIRECTORY_MARKER` manifest with a ``"format": "flame_transit..."`` entry) or
    ``overwrite`` is true; otherwise :class:`InputError` is raised before anything is written.
    The writer should put a manifest named :data:`DIRECTORY_MARKER` in the directory so that a
    later run may replace it.

    The swap is two renames (old out of the way, new in), so a reader never sees a half-written
    directory; the old contents are deleted afterwards. On error the temporary is removed and
    the old directory is left as it was.
    """
    if path is None or str(path) == "":
        raise InputError("output folder is empty; give a folder name such as 'out/frames'")
    target = user_path(os.fspath(path)).absolute()
    if target.exists() and not target.is_dir():
        raise InputError(f"output folder {target} exists and is a file; give a folder name")
    if target.is_dir():
        try:
            empty = not any(target.iterdir())
        except OSError as exc:
            raise InputError(f"cannot read output folder {target}: {_describe_os_error(exc)}") from exc
        if not (empty or overwrite or is_our_directory(target)):
            raise InputError(
                f"output folder {target} is not empty and was not written by flame_transit; "
                "choose another folder or pass overwrite=True to replace it"
            )
    # checks the parent like a file target would (exists / creatable / writable)
    parent_probe = target.parent / (target.name + ".probe")
    prepare_output_path(parent_probe, make_parents=make_parents)
    try:
        tmp = _temp_name(target, directory=True)
    except OSError as exc:
        raise InputError(f"cannot write in {target.parent}: {_describe_os_error(exc)}") from exc
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Optional[Path] = None
    try:
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "previous")
        os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "previous").exists() and not target.exists():
            os.replace(old / "previous", target)  # put the old one back
        raise InputError(f"cannot move finished folder into place at {target}: {_describe_os_error(exc)}") from exc
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def load_failure(exc: BaseException) -> str:
    """Why a file did not load, in a few words for an error message: the exception's type and
    its text when that is one short line. ``torch.load`` of a file that is no checkpoint says a
    page of advice to retry with ``weights_only=False``; that is dropped.

    Example:
        >>> load_failure(ValueError("bad magic"))
        'ValueError: bad magic'
        >>> load_failure(RuntimeError("Weights only load failed.\\nRe-running torch.load ..."))
        'RuntimeError'
    """
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text and "\n" not in text and len(text) < 160 else type(exc).__name__


def read_npz(path: PathLike, what: str, error: Type[Exception] = InputError) -> Dict[str, Any]:
    """All arrays of an ``.npz`` file (no pickles), with one clear error for a missing path, a
    folder, or a file that is not a readable archive; ``what`` names the kind of file.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
        >>> np.savez(p, x=np.arange(3))
        >>> read_npz(p, "test")["x"].tolist()
        [0, 1, 2]
    """
    import zipfile

    import numpy as np

    p = user_path(os.fspath(path))
    if p.is_dir():
        raise error(f"expected a {what} .npz file, got a directory: {p}")
    if not p.is_file():
        raise error(f"{what} file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise error(f"{p} is not a readable {what} .npz file ({exc})") from exc


def read_npz_with_header(path: PathLike, what: str, writer: str, fmt: str,
                         error: Type[Exception] = InputError) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(header, arrays)`` of an ``.npz`` file that carries a JSON ``header_json`` with a
    ``format`` tag (the files our ``save`` methods write): :func:`read_npz`, then one clear
    error naming ``writer`` when the header is missing, unreadable or of another format.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
        >>> np.savez(p, header_json=np.array(json.dumps({"format": "demo/1"})), x=np.arange(2))
        >>> header, arrays = read_npz_with_header(p, "demo", "Demo.save", "demo/1")
        >>> header["format"], sorted(arrays)
        ('demo/1', ['x'])
    """
    arrays = read_npz(path, what, error)
    p = user_path(os.fspath(path))
    try:
        header = json.loads(str(arrays.pop("header_json")))
        found = header.get("format")
    except Exception as exc:
        raise error(f"{p} is not a {what} file written by {writer} ({type(exc).__name__}: {exc})") from exc
    if found != fmt:
        raise error(f"{p} is not a {what} file (format {found!r}, expected {fmt!r})")
    return header, arrays
