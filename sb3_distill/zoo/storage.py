"""
The Optuna storage behind ``--storage``: a journal file for the processes of one machine, a database for many.

A database storage beats a heartbeat for every running trial, so the trial of a worker that died is failed and
retried by the others (Optuna's heartbeat mechanism); a journal file has no heartbeat, and
:mod:`sb3_distill.zoo.tuning` recovers its dead workers' trials from their process ids instead.
"""

import copy
import os
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.trial import FrozenTrial

from sb3_distill.zoo.config import ConfigError

HEARTBEAT_ENV_VAR = "SB3_DISTILL_HEARTBEAT"
STORAGE_TIMEOUT_ENV_VAR = "SB3_DISTILL_STORAGE_TIMEOUT"
#: Seconds between two heartbeats of a running trial in an RDB storage; a trial silent for twice that is failed.
DEFAULT_HEARTBEAT_INTERVAL = 60
#: Seconds to wait for a database server before giving up.
DEFAULT_STORAGE_TIMEOUT = 10
#: How many times the trial of a dead worker is retried.
MAX_RETRY = 3
#: User attributes naming the process that runs a trial (see :mod:`sb3_distill.zoo.tuning`).
WORKER_ATTRS: tuple[str, str] = ("worker", "worker_start")


class StorageError(RuntimeError):
    """An Optuna storage that is malformed or cannot be reached."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigError(f"${name} must be a positive number of seconds, not {value!r}.")
    return number


def heartbeat_interval() -> int:
    """
    :return: seconds between heartbeats of a running trial (``$SB3_DISTILL_HEARTBEAT``, default 60)
    """
    return _env_int(HEARTBEAT_ENV_VAR, DEFAULT_HEARTBEAT_INTERVAL)


class RetryDeadWorkerTrial:
    """
    Optuna's retry callback (``RetryHeartbeatStaleTrialCallback``): the trial of a dead worker is queued again as a
    ``WAITING`` copy with the same parameters (``system_attrs["failed_trial"]`` names the original), at most
    :data:`MAX_RETRY` times. The copy does not inherit the dead worker's name, which would make it look dead too.
    """

    def __init__(self) -> None:
        # Renamed in Optuna 4.9; the old name is deprecated.
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
        with warnings.catch_warnings():
            # Experimental in Optuna since 2.8; it is what makes a killed worker harmless here.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = retry(max_retry=MAX_RETRY)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """
        :param study: the study
        :param trial: the failed trial
        """
        trial = copy.copy(trial)
        trial.user_attrs = {key: value for key, value in trial.user_attrs.items() if key not in WORKER_ATTRS}
        self._retry(study, trial)


def _retry_keyword() -> str:
    """``RDBStorage``'s keyword for that callback (renamed in Optuna 4.9)."""
    import inspect

    parameters = inspect.signature(RDBStorage.__init__).parameters
    return "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in parameters else "failed_trial_callback"


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def open_storage(storage: str) -> BaseStorage:
    """
    The Optuna storage behind ``--storage``: a journal file for the processes of one machine, or a database for many.

    * ``path.log``: ``JournalStorage(JournalFileBackend(path))`` (file locks; no heartbeat: a killed worker's
      trial stays ``RUNNING`` until :mod:`sb3_distill.zoo.tuning` finds its process gone); a log line that a killed
      worker left half-written is removed first (:func:`repair_journal`);
    * a database URL (``postgresql://user:password@host:5432/db``, ``mysql://...``, ``sqlite:///file.db``):
      ``RDBStorage`` with a heartbeat every ``$SB3_DISTILL_HEARTBEAT`` s (60): a trial whose worker stopped
      beating for two intervals is failed and retried (up to 3 times) by the other workers. The connection is
      checked now and gives up after ``$SB3_DISTILL_STORAGE_TIMEOUT`` s (10).

    :param storage: the ``--storage`` value
    :return: the storage
    """
    if storage.endswith(".log"):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        lock = _journal_lock(storage)
        backend = JournalFileBackend(storage, lock_obj=lock)  # creates the file
        repair_journal(storage, lock)
        return JournalStorage(backend)
    if "://" not in storage:
        raise StorageError(
            f"--storage {storage!r} is neither a journal file (a path ending in .log, for several processes on one "
            "machine) nor a database URL (postgresql://user:password@host:5432/db, for several machines)."
        )
    if storage.startswith("postgres://"):
        storage = "postgresql://" + storage[len("postgres://") :]  # SQLAlchemy only knows the long name
    shown = _hide_password(storage)
    if storage.startswith("postgresql://"):
        storage = _with_installed_driver(storage)
    return _rdb_storage(storage, shown)


class FlockJournalLock:
    """
    A journal lock that dies with its holder: ``fcntl.flock`` on ``PATH.flock``.

    Optuna's default lock is a symlink ``PATH.lock``, made for NFS: a worker killed while it writes leaves it behind,
    and every other worker then waits 30 s (Optuna's grace period) before breaking it. The kernel releases a flock
    when its process dies, so a killed worker stalls no one. Workers that lock the file Optuna's way (a plain
    ``rl_zoo3.train`` on the same journal) do not see this lock: give a study's journal to sb3-distill workers only.

    :param path: the journal file
    """

    def __init__(self, path: str) -> None:
        self._path = f"{path}.flock"
        self._file: Any = None

    def acquire(self) -> bool:
        """
        Block until this process holds the lock.

        :return: ``True``
        """
        import fcntl

        file = open(self._path, "a")  # held until release()
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        except BaseException:
            file.close()
            raise
        self._file = file
        return True

    def release(self) -> None:
        """Release the lock."""
        import fcntl

        file, self._file = self._file, None
        if file is not None:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
            file.close()


def _journal_lock(path: str) -> Any:
    """:class:`FlockJournalLock` where ``fcntl`` exists; Optuna's default lock elsewhere (Windows)."""
    import importlib.util

    if importlib.util.find_spec("fcntl") is None:
        from optuna.storages.journal import JournalFileSymlinkLock

        return JournalFileSymlinkLock(path)
    return FlockJournalLock(path)


def repair_journal(path: str, lock: Any) -> int:
    """
    Remove the half-written last line a worker killed in the middle of a write (or a full disk) leaves in a journal.

    Optuna skips such a line when it reads, but the next worker's log line is appended to it: the merged line is
    invalid, that operation is lost and every later read of the file fails. The file is checked under the journal's
    lock, which every writer holds while it appends, so no live writer can be in the middle of a line.

    :param path: the journal file
    :param lock: its lock (the one its ``JournalFileBackend`` uses)
    :return: the number of bytes removed
    """
    lock.acquire()
    try:
        with open(path, "rb+") as file:
            end = size = file.seek(0, os.SEEK_END)
            file.seek(max(size - 1, 0))
            if size > 0 and file.read(1) != b"\n":
                end = _after_last_newline(file, size)
                file.truncate(end)
    finally:
        lock.release()
    if end < size:
        warnings.warn(f"{path}: removed the last {size - end} bytes, a log line that a killed worker left half-written.")
    return size - end


def _after_last_newline(file: Any, size: int) -> int:
    """:return: the offset just after the file's last newline (0 if it has none), read back in blocks"""
    end = size
    while end > 0:
        start = max(end - 65536, 0)
        file.seek(start)
        newline = file.read(end - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def _with_installed_driver(url: str) -> str:
    """SQLAlchemy's default PostgreSQL driver is psycopg2 (< 2.1) or psycopg 3 (2.1+): use whichever is installed."""
    import importlib.util

    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://" + url[len("postgresql://") :]
    return url


def _rdb_storage(url: str, shown: str) -> RDBStorage:
    import sqlalchemy.exc

    timeout = _env_int(STORAGE_TIMEOUT_ENV_VAR, DEFAULT_STORAGE_TIMEOUT)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    dialect = url.split(":", 1)[0].split("+")[0]
    if dialect in ("postgresql", "mysql", "mariadb"):
        engine_kwargs["connect_args"] = {"connect_timeout": timeout}
    attempt = 0
    while True:
        try:
            with warnings.catch_warnings():
                # Heartbeats are marked experimental in Optuna; they are what makes a killed worker harmless here.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", FutureWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval(),
                    **{_retry_keyword(): RetryDeadWorkerTrial()},  # type: ignore[arg-type]
                )
        except ImportError as error:
            driver = (
                "a driver: pip install 'sb3-distill[postgres]' (psycopg2-binary)" if dialect == "postgresql" else "its driver"
            )
            raise StorageError(f"The storage {shown} needs {driver} ({error.__cause__ or error}).") from error
        except sqlalchemy.exc.ArgumentError as error:
            raise StorageError(f"--storage {shown} is not a valid database URL: {error}") from error
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            # Workers started together on an empty database race to create Optuna's tables: the loser tries again.
            attempt += 1
            if attempt == 5:
                raise StorageError(f"Could not set up Optuna's tables in {shown}: {error.orig or error}") from error
            time.sleep(attempt)
        except sqlalchemy.exc.DBAPIError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
            raise StorageError(
                f"Cannot reach the Optuna storage {shown}: {reason}. Check that the database server runs and accepts "
                "connections from this machine (host, port, user, password, database name, pg_hba.conf)."
            ) from error


def has_heartbeat(storage: BaseStorage | None) -> bool:
    """
    :param storage: an opened storage
    :return: whether it fails the trials of dead workers by itself (a database storage from :func:`open_storage`)
    """
    return isinstance(storage, RDBStorage) and storage.heartbeat_interval is not None
