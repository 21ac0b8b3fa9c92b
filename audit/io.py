"""Files in and out: atomic writes, validated reads, the one-line error for bad input, and the
lock that keeps two runs of the workflow out of one directory.

Every stage writes its outputs through :func:`atomic_path`, so a killed or failed job never
leaves a half-written file for Snakemake (or a user) to mistake for a result. Results are
reproducible byte for byte (:func:`save_torch`) and readable as the umask allows (0644 under
umask 022, 0664 under 002), like any file the user's own tools write.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd


class AuditInputError(ValueError):
    """A user-facing input is wrong. The message is one line naming the file or key; ``detail``
    (optional, several lines) follows it on stderr, e.g. the traceback of the user's own code."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail


#: the temporary file of an atomic write: ``.<stem>.<8 hex digits>.part<suffix>`` beside the target
PART = re.compile(r"^\..+\.[0-9a-zA-Z_]{8}\.part(\.[^/]*)?$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file keeps the destination's suffix (``np.save``, ``savefig`` and PIL pick
    the format from it) and is created with mode 0666 minus the umask, which the rename keeps.
    On any exception (SIGTERM included, see :func:`run_cli`) the temporary file is removed and
    nothing appears at ``path``; a SIGKILL leaves it, and the next run removes it
    (:func:`remove_stale_parts`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    while True:
        tmp_path = path.parent / f".{path.stem}.{secrets.token_hex(4)}.part{suffix}"
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def remove_stale_parts(root: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of atomic writes under ``root`` (left by a SIGKILL); call it
    only while holding the :class:`RunLock`, when no job of this workflow is writing. Returns
    the files removed."""
    removed = []
    for folder, _, names in os.walk(root):
        for name in names:
            if PART.match(name):
                (Path(folder) / name).unlink(missing_ok=True)
                removed.append(Path(folder) / name)
    return removed


def save_torch(path: str | os.PathLike, obj) -> None:
    """``torch.save`` atomically and byte-reproducibly: through an open file, so the zip entries
    are ``archive/...`` (given a path, torch names them after the random temporary file), and
    of :func:`canonical` ``obj``, so equal contents give equal bytes."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        torch.save(canonical(obj), stream)


def canonical(obj):
    """``obj`` with every string interned, its dicts, lists and tuples rebuilt (types and a
    state dict's ``_metadata`` kept). A pickle refers back to a string it has written when it
    meets the same object again: without this, a training state resumed from a checkpoint
    (its keys loaded, the new ones made fresh) pickles to other bytes than the same state of
    an uninterrupted run."""
    if type(obj) is str:
        return sys.intern(obj)
    if type(obj) is list or type(obj) is tuple:
        return type(obj)(canonical(value) for value in obj)
    if type(obj) in (dict, collections.OrderedDict):
        rebuilt = type(obj)((canonical(key), canonical(value)) for key, value in obj.items())
        if hasattr(obj, "_metadata"):
            rebuilt._metadata = canonical(obj._metadata)
        return rebuilt
    return obj


def save_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array as ``.npy`` atomically (readable later as a memmap)."""
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def save_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON atomically; numpy scalars and arrays are converted."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def load_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AuditInputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def save_table(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write a table as CSV atomically, without the pandas index."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def load_table(path: str | os.PathLike, required_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: file not found")
    table = pd.read_csv(path)
    missing = [c for c in required_columns if c not in table.columns]
    if missing:
        raise AuditInputError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def load_images(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Read a uint8 image array of shape (N, H, W, C) saved with :func:`save_array`.

    With ``mmap`` the pixels stay on disk until touched, so 200k images cost no RAM.
    """
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: file not found")
    try:
        images = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as err:
        raise AuditInputError(f"{path}: not a .npy array ({err})") from None
    check_images(images, str(path))
    return images


def check_images(images: np.ndarray, where: str) -> None:
    """Raise :class:`AuditInputError` unless ``images`` is uint8 of shape (N, H, W, C), C in {1, 3}."""
    if images.dtype != np.uint8:
        raise AuditInputError(f"{where}: expected uint8 images, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise AuditInputError(
            f"{where}: expected images of shape (N, H, W, C) with C in (1, 3), got {images.shape}"
        )
    if images.shape[0] == 0:
        raise AuditInputError(f"{where}: no images")


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def run_cli(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a stage's ``main``; turn bad input into one line on stderr (then its ``detail``, if
    any) and exit status 2. SIGTERM (a cluster cancellation, Snakemake stopping) unwinds like
    an exception, so no temporary file of an atomic write is left behind; exit status 143."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        main(argv)
    except AuditInputError as err:
        print(f"ganaudit: error: {err}", file=sys.stderr, flush=True)
        if err.detail:
            print(err.detail.rstrip(), file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


# --- one run at a time ----------------------------------------------------------------------------

class RunLock:
    """An exclusive ``fcntl.flock`` on ``path``, held by the Snakemake process of a run.

    The kernel releases it when the process ends, however it ends (``kill -9`` included), so it
    never goes stale and nobody has to remove it. Whoever holds it knows that no other run of
    the workflow is active in the directory, so Snakemake's own lock files there are stale
    (:meth:`clear_stale`). The file holds one line saying who holds it (pid, host, state).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.fd: int | None = None
        self.unsupported = False

    @property
    def held(self) -> bool:
        return self.fd is not None

    def acquire(self, state: str = "starting", wait: float = 0.0) -> bool:
        """Take the lock, polling up to ``wait`` seconds: False if another process holds it. On a
        file system without locks (an NFS mount without lockd) a warning, and True."""
        if self.fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as err:
                    busy = err.errno in (errno.EAGAIN, errno.EACCES)
                    if busy and time.monotonic() < deadline:
                        time.sleep(0.2)
                        continue
                    os.close(fd)
                    if not busy and not self.unsupported:
                        self.unsupported = True
                        print(f"ganaudit: warning: cannot lock {self.path} ({err.strerror}): runs in this "
                              "directory are not kept apart", file=sys.stderr)
                    return not busy
            self.fd = fd
        self.mark(state)
        return True

    def mark(self, state: str) -> None:
        """Say in the lock file who holds it and what it does (``starting``, ``running``)."""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()}, {state}\n".encode(), 0)

    def holder(self) -> str:
        """The holder's line (``pid 123 on host, running``), or ``unknown``."""
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None

    def clear_stale(self, lock_dir: str | os.PathLike) -> list[Path]:
        """Delete Snakemake's lock files in ``lock_dir`` (``.snakemake/locks``): while this lock
        is held they belong to runs that are dead (killed), and would make Snakemake refuse to
        start until ``--unlock``. Returns the files removed (none unless the lock is held)."""
        if not self.held:
            return []
        removed = sorted(Path(lock_dir).glob("*.lock"))
        for path in removed:
            path.unlink(missing_ok=True)
        return removed


def stage_errors(log_root: str | os.PathLike, since: float) -> list[str]:
    """The ``ganaudit: error:`` lines of the stage logs under ``log_root`` written at or after
    ``since`` (seconds since the epoch), each followed by `` (log: <path>)``, in path order."""
    return [line for log in sorted(Path(log_root).rglob("*.log")) for line in _error_lines(log, since)]


def _error_lines(log: str | os.PathLike, since: float = -np.inf) -> list[str]:
    try:
        if os.stat(log).st_mtime < since:
            return []
        text = Path(log).read_text(errors="replace")
    except OSError:
        return []
    return [f"{line.strip()} (log: {log})" for line in text.splitlines() if line.startswith("ganaudit: error:")]


#: how Snakemake's own log (``.snakemake/log/*.snakemake.log``) names a failed job and its log
_FAILED_JOB = re.compile(r"^Error in rule (\S+):$")
_JOB_LOG = re.compile(r"^\s+log: (.+?) \(check log file\(s\) for error details\)$")


def failure_lines(snakemake_logs, log_root: str | os.PathLike, since: float) -> list[str]:
    """One line or more per failed job, for the terminal (a workflow's ``onerror``): the stage's
    ``ganaudit: error:`` lines, else the last line of its log (a crash: the exception). The
    failed jobs are read from Snakemake's own log(s) (``snakemake_logs``: a path or a list, as
    ``onerror`` gets them); if they name none (another Snakemake log format), the error lines of
    every stage log under ``log_root`` written since ``since``."""
    failed: list[tuple[str, list[str]]] = []
    if isinstance(snakemake_logs, (str, os.PathLike)):
        snakemake_logs = [snakemake_logs]
    text = ""
    for log in snakemake_logs or []:
        with contextlib.suppress(OSError):
            text += Path(log).read_text(errors="replace")
    for line in text.splitlines():
        if match := _FAILED_JOB.match(line):
            failed.append((match.group(1), []))
        elif failed and not failed[-1][1] and (match := _JOB_LOG.match(line)):
            failed[-1][1].extend(match.group(1).split(", "))
    if not failed:
        return stage_errors(log_root, since)
    lines = []
    for rule, logs in failed:
        errors = [line for log in logs for line in _error_lines(log)]
        if not errors:
            last = [line.strip() for log in logs if os.path.isfile(log)
                    for line in Path(log).read_text(errors="replace").splitlines() if line.strip()][-1:]
            errors = [f"ganaudit: error: rule {rule} failed: {last[0] if last else 'no message'} "
                      f"(log: {', '.join(logs) or 'none; see above'})"]
        lines += errors
    return lines
