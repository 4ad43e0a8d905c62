"""
Atomic file writes: a crash (SIGKILL, power loss) or a full disk during a save leaves the previous file intact.

SB3 writes models and replay buffers in place, so a process killed mid-save destroys the last good checkpoint too.
Here the new content goes to a temporary file in the same folder (same file system), is flushed to disk, and only
then replaces the target with ``os.replace`` (atomic on POSIX and Windows).
"""

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Iterator


def resolve_save_path(path: str | os.PathLike, suffix: str) -> pathlib.Path:
    """
    The file SB3 would write for ``path``: ``suffix`` is added when the path has none (as SB3's ``open_path`` does).

    :param path: the path given by the user
    :param suffix: the default suffix without the dot (``"zip"``, ``"pkl"``)
    :return: the target file
    """
    target = pathlib.Path(path)
    return target if target.suffix else target.with_name(f"{target.name}.{suffix}")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[pathlib.Path]:
    """
    Yield a temporary path beside ``target``; when the block succeeds, it is synced and renamed onto ``target``.

    If the block raises (including ``OSError`` for a full disk), the temporary file is removed, ``target`` is left
    as it was, and the error is re-raised with the target's name and the guarantee in its message.

    :param target: the file to write
    :return: the temporary path to write to (it keeps the target's suffix, so SB3 adds none)
    """
    target = pathlib.Path(target)
    if target.is_dir():
        raise IsADirectoryError(f"Cannot save to {target}: it is a folder. Give a file name, e.g. {target / 'model.zip'}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(descriptor)
    temporary = pathlib.Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        kept = "the previous file is intact" if target.exists() else "nothing was written"
        raise OSError(error.errno, f"Could not write {target} ({error.strerror or error}); {kept}.") from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


__all__ = ["atomic_path", "resolve_save_path"]
