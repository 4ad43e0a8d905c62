"""
Atomic file writes: a crash (SIGKILL, power loss) or a full disk during a save leaves the previous file intact.

SB3 writes models and replay buffers in place, so a process killed mid-save destroys the last good checkpoint too.
Here the new content goes to a temporary file in the same folder (same file system), is flushed to disk, and only
then replaces the target with ``os.replace`` (atomic on POSIX and Windows).

The temporary file is ``.<target name>.<host>-<pid>.<random>.tmp`` (e.g. ``.model.zip.node1-4242.k2j7x_1a.tmp``):
hidden, and with a ``.tmp`` suffix, so that nothing that lists ``*.zip`` or ``*.pkl`` (SB3, rl-zoo3, ``load_teacher``
on a run folder) ever picks it up. A process killed mid-save leaves it behind; the next save to the same target
removes it once the process named in it no longer runs on this host (on POSIX systems; elsewhere it stays, harmless).
"""

import contextlib
import os
import pathlib
import re
import socket
import tempfile
from collections.abc import Iterator

from sb3_distill.common.workers import process_is_gone

#: The suffix of a save in progress (see the module's docstring for the whole name)
TEMPORARY_SUFFIX = ".tmp"


def _host() -> str:
    # Dots and dashes would blur where the host ends and the pid starts
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def remove_leftover_temporaries(target: str | os.PathLike) -> list[pathlib.Path]:
    """
    Remove the temporary files that saves to ``target`` left behind when their process was killed mid-write.

    Only files of processes of this host that no longer run are removed: a save in progress (in this process,
    another one, or on another machine sharing the folder) keeps its file.

    :param target: the file the saves were writing
    :return: the files removed
    """
    target = pathlib.Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{re.escape(_host())}-(\d+)\.[^.]+{re.escape(TEMPORARY_SUFFIX)}")
    removed: list[pathlib.Path] = []
    if not target.parent.is_dir():
        return removed
    for leftover in target.parent.iterdir():
        match = pattern.fullmatch(leftover.name)
        if match and int(match.group(1)) != os.getpid() and process_is_gone(int(match.group(1))):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


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
    Leftovers of earlier saves to ``target`` killed mid-write are removed first (:func:`remove_leftover_temporaries`).

    If the block raises (including ``OSError`` for a full disk), the temporary file is removed, ``target`` is left
    as it was, and the error is re-raised with the target's name and the guarantee in its message.

    :param target: the file to write
    :return: the temporary path to write to (its ``.tmp`` suffix keeps SB3 from adding one)
    """
    target = pathlib.Path(target)
    if target.is_dir():
        raise IsADirectoryError(f"Cannot save to {target}: it is a folder. Give a file name, e.g. {target / 'model.zip'}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftover_temporaries(target)
    prefix = f".{target.name}.{_host()}-{os.getpid()}."
    descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=TEMPORARY_SUFFIX, dir=target.parent)
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


__all__ = ["TEMPORARY_SUFFIX", "atomic_path", "remove_leftover_temporaries", "resolve_save_path"]
