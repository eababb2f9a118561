"""One way to write a file atomically: a temp file beside it, fsync, rename, fsync the folder.

Used for exports and the Datasette metadata file alike, so both get the same
permissions (0666 less the user's umask, like any file the user creates).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from .errors import MinnaTasksError

T = TypeVar("T")


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[str]], T]) -> T:
    """Call `write(file)` on a new temp file beside `path`, then rename it into place; a
    reader sees the old file or the whole new one, never half of it. Returns what
    `write` returned."""
    target = Path(path)
    if target.is_dir():
        raise MinnaTasksError(f"{target} is a directory, not a file")
    folder = target.parent if str(target.parent) else Path(".")
    fd, temp = _create_temp(folder, target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return result


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(folder: Path, target: Path) -> tuple[int, Path]:
    """A new temp file beside `target`, created with mode 0666 less the user's umask.

    O_CREAT | O_EXCL never opens an existing file or follows a symlink, and the
    kernel applies the umask (mkstemp would make the file 0600).
    """
    while True:
        temp = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
        except FileExistsError:
            continue
        except OSError as e:
            raise MinnaTasksError(f"cannot write {target}: {e.strerror}") from None
