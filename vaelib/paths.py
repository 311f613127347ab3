"""Where things live (the project root, the data and figures folders) and how files are written there: atomically,
with a clear error when the disk is full."""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"
FIGURES_DIR = PROJECT_ROOT / "figures"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
BUILD_DIR = PROJECT_ROOT / "build"
# The real presses of Zacks et al. (2006) where a development checkout has them (../shared); users pass a path.
ZACKS_DAT = PROJECT_ROOT.parent / "shared" / "data" / "zacks2006" / "zachs2006_data021011.dat"


def resolve(path: str | os.PathLike) -> Path:
    """Return ``path`` as an absolute path; a relative one is taken relative to the project root.

    Notebooks run from ``notebooks/`` in JupyterLab and from the root under papermill; resolving
    against the root makes a parameter such as ``data_dir="data"`` mean the same folder in both.
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


class NoSpaceError(OSError):
    """The disk is full (``errno.ENOSPC``); the message names the folder, what was written and the space."""


def no_space(folder: str | os.PathLike, what: str, need: int | None = None, advice: str = "") -> NoSpaceError:
    """A ``NoSpaceError`` naming ``folder``, ``what`` was being written, the bytes it ``need``s and those free."""
    folder = Path(folder)
    try:
        free: int | None = shutil.disk_usage(folder).free
    except OSError:
        free = None
    space = []
    if need is not None:
        space.append(f"it needs {_size(need)}")
    if free is not None:
        space.append(f"{_size(free)} are free there")
    return NoSpaceError(errno.ENOSPC, f"no space left on the device of {folder} while writing {what}"
                        + (f" ({', '.join(space)})" if space else "")
                        + "; nothing half-written was kept under its name. Free some space or use another folder"
                        + (f", {advice}" if advice else ""))


def check_free_space(folder: str | os.PathLike, what: str, need: int, advice: str = "") -> None:
    """Refuse before writing: ``no_space``'s ``NoSpaceError`` when ``need`` bytes of ``what`` will not fit in
    ``folder`` (made if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if need > shutil.disk_usage(folder).free:
        raise no_space(folder, what, need=need, advice=advice)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def disk_full(e: BaseException) -> bool:
    """Whether ``e`` is the operating system saying the disk (or the user's quota) is full."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only if the block succeeds.

    An interrupted or failed write leaves no file under the final name, so a later step can never
    mistake a half-written output for a complete one. A full disk raises ``NoSpaceError`` naming the folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + suffix, dir=final.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; give the final file the usual mode
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except OSError as e:
        if disk_full(e) and not isinstance(e, NoSpaceError):
            tmp_path.unlink(missing_ok=True)           # first, so that the free space said is what is left
            raise no_space(final.parent, final.name) from e
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``final``; it replaces ``final`` only if the block succeeds.

    A failure or interruption leaves ``final`` as it was (complete, or absent) and removes the temporary
    folder (a full disk raises ``NoSpaceError`` naming it). Each call gets its own temporary name
    (``.NAME.partial-XXXX``), so two writers never share one;
    an old ``final`` is renamed aside before the new one takes its name, so a reader sees the old folder,
    the new one, or none, never a half-deleted one.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)          # mkdtemp makes 0700; give the final folder the usual mode
    try:
        yield tmp
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        if disk_full(e) and not isinstance(e, NoSpaceError):
            shutil.rmtree(tmp, ignore_errors=True)     # first, so that the free space said is what is left
            raise no_space(final.parent, f"{final.name}/") from e
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` written atomically (to a temporary name, then renamed); returns the path."""
    import numpy as np

    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)
    return path


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2, **dumps: Any) -> Path:
    """``obj`` as JSON text (one trailing newline) written atomically to ``path``; returns the path.

    ``dumps`` go to ``json.dumps`` (for instance ``default=str`` or ``allow_nan=False``); the text is made before
    the file is opened, so an object JSON cannot hold raises with nothing written."""
    text = json.dumps(obj, indent=indent, **dumps) + "\n"
    path = Path(path)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# Output folders: never replace what this project did not write; one writer at a time

OUTPUT_MARKER = ".vaelib-output.json"   # in every output folder: the kind of output this project wrote there


class OutputPathError(FileExistsError):
    """An output path that holds something this project did not write there (or another kind of its output)."""


def output_kind(folder: str | os.PathLike) -> str | None:
    """The kind of output this project wrote into ``folder`` (its ``OUTPUT_MARKER``), or None."""
    try:
        return str(json.loads((Path(folder) / OUTPUT_MARKER).read_text())["kind"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_output(folder: str | os.PathLike, kind: str) -> Path:
    """Write ``folder``'s ``OUTPUT_MARKER`` saying it holds a ``kind`` this project wrote; return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if output_kind(folder) != kind:
        write_json(folder / OUTPUT_MARKER, {"kind": kind, "by": "vaelib"}, indent=None)
    return folder


def claim_output(path: str | os.PathLike, kind: str, overwrite: bool = False, own: tuple[str, ...] = ()) -> Path:
    """Check that ``path`` may receive a ``kind`` (e.g. "frame store"); return it as a ``Path``.

    Accepted: an absent path, an empty folder, or a folder this project wrote a ``kind`` into (its
    ``OUTPUT_MARKER`` says so; or, written before the marker existed, it holds a name matching the pattern
    ``own[0]`` and nothing but names matching the patterns ``own``). A folder holding another kind of this
    project's output is accepted only with ``overwrite``. Anything else (a file, a folder of other files)
    raises ``OutputPathError`` naming the path and what is there: it is never replaced.
    """
    import fnmatch

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return path
    if not path.is_dir():
        size = path.stat().st_size if path.exists() else 0
        raise OutputPathError(f"{path} is a file ({_size(size) if size else '0 bytes'}), not a {kind} folder: it is "
                              f"not replaced. Give as the {kind} a path that is absent, empty, or a {kind} this "
                              "project wrote")
    entries = sorted(os.listdir(path))
    if not entries:
        return path
    found = output_kind(path)
    if found == kind:
        return path
    if found is None and own and any(fnmatch.fnmatch(e, own[0]) for e in entries) and \
            all(any(fnmatch.fnmatch(e, pattern) for pattern in own) for e in entries):
        return path                                     # written before the marker existed
    if found is not None:
        if overwrite:
            return path
        raise OutputPathError(f"{path} holds a {found} this project wrote, not a {kind}: it is not replaced unless "
                              "asked (overwrite=True, or --overwrite on the command line); or give another path")
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    raise OutputPathError(f"{path} is a folder holding files this project did not write ({len(entries)} entries: "
                          f"{shown}): it is not replaced. Give as the {kind} a path that is absent, empty, or a "
                          f"{kind} this project wrote")


@contextmanager
def folder_lock(folder: str | os.PathLike, writer: str, what: str) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``folder`` while writing it: a second writer is refused, naming the pid of
    the one that holds it (``writer``: e.g. "training run"; ``what``: e.g. "the run folder").

    The lock dies with its process (even ``kill -9``): the lock file of a dead process is taken over, so a
    killed run never blocks the next. Leftovers of killed writes (``.NAME.partial-*``, :func:`atomic_dir`'s)
    are removed once the lock is held. Needs POSIX file locks (``fcntl``: Linux, macOS, WSL); elsewhere a
    ``RuntimeError`` says so before anything is written.
    """
    folder = Path(folder)
    try:
        import fcntl
    except ImportError:
        import sys
        raise RuntimeError(f"cannot lock {what} {folder} on this system ({sys.platform}): it needs POSIX file locks "
                           f"(Python's fcntl module: Linux, macOS, or WSL on Windows) so that two runs never write "
                           "one folder. Run it there, e.g. under WSL") from None

    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = folder.parent / f".{folder.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            raise RuntimeError(f"another {writer} (pid {holder}) is writing {what} {folder} (it holds {lock}); "
                               f"wait for it to finish, or give another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        for stale in folder.parent.glob(f".{folder.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield
    finally:
        os.close(fd)
