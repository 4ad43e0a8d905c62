"""
A worker of a ``SubprocVecEnv`` that dies (a crash in the env's native code, the OOM killer, ``os._exit``) stops
training with an error that names it, instead of a bare ``EOFError`` or a hang.

What SB3 does on its own: with the ``forkserver`` / ``spawn`` start methods the parent's ``recv()`` raises a bare
``EOFError`` (or ``BrokenPipeError`` when it sends); with ``fork``, the other workers inherited the dead worker's end
of the pipe, so no end-of-file ever comes and ``step_wait()`` blocks forever. Here, while an algorithm of the
package learns, the env's ``step_wait`` first waits for every worker's answer *or* the death of a worker process
(its sentinel), so a dead worker is seen at once whatever the start method.
"""

import contextlib
import os
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from typing import Any

from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv, VecEnvWrapper


class WorkerDiedError(RuntimeError):
    """A ``SubprocVecEnv`` worker process died; the message names it and what to do."""


def find_subproc_env(env: VecEnv | None) -> SubprocVecEnv | None:
    """
    :param env: a VecEnv, possibly wrapped (``VecNormalize``, ``VecMonitor``, ...)
    :return: the ``SubprocVecEnv`` inside it, if any
    """
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    return env if isinstance(env, SubprocVecEnv) else None


def _dead_workers(env: SubprocVecEnv, grace: float) -> list[tuple[int, Any]]:
    # A forkserver reports a child's death a moment after its pipe closed: give the sentinels that moment.
    wait([process.sentinel for process in env.processes], timeout=grace)
    dead = []
    for index, process in enumerate(env.processes):
        if not process.is_alive():
            process.join(timeout=1)  # reap it, so that its exit code is known
            dead.append((index, process))
    return dead


def _shut_down(env: SubprocVecEnv) -> None:
    """Stop the surviving workers: a SubprocVecEnv cannot replace one, and its close() would wait on the dead one."""
    for process in env.processes:
        if process.is_alive():
            process.terminate()
    for process in env.processes:
        process.join(timeout=5)
    for remote in env.remotes:
        remote.close()
    env.waiting, env.closed = False, True


def worker_died_error(env: SubprocVecEnv, grace: float = 0.0) -> WorkerDiedError | None:
    """
    :param env: the SubprocVecEnv
    :param grace: seconds to wait for a worker that is dying to be reported dead
    :return: an error naming the dead worker(s) (after shutting the others down), or ``None`` if all are alive
    """
    dead = _dead_workers(env, grace)
    if not dead:
        return None
    _shut_down(env)
    names = ", ".join(f"worker {index} (pid {process.pid}, exit code {process.exitcode})" for index, process in dead)
    return WorkerDiedError(
        f"{names} of the SubprocVecEnv ({len(env.processes)} workers) died while running its env, so training stopped; "
        "the other workers were stopped and the env is closed. The worker's own output (above) shows why; to find the "
        "cause, run the same env in this process (DummyVecEnv, or vec_env_cls=None) where the error is raised "
        "normally. Then make a new env and resume from the last checkpoint (CheckpointCallback: Model.load(path, env=env) "
        "and load_replay_buffer), or start again."
    )


def _guarded_step_wait(env: SubprocVecEnv, step_wait: Callable[[], Any]) -> Callable[[], Any]:
    def step_wait_or_raise() -> Any:
        pending = list(env.remotes)
        sentinels = {process.sentinel: process for process in env.processes}
        while pending:
            ready = wait([*pending, *sentinels])
            if any(item in sentinels for item in ready):
                # A worker ended; its answer may still be in the pipe, but the env cannot go on without it.
                error = worker_died_error(env)
                if error is not None:
                    raise error
            pending = [remote for remote in pending if remote not in ready]
        return step_wait()

    return step_wait_or_raise


@contextlib.contextmanager
def explaining_dead_workers(env: VecEnv | None) -> Iterator[None]:
    """
    While the block runs, a dead ``SubprocVecEnv`` worker raises :class:`WorkerDiedError` (never a hang or a bare
    ``EOFError``). Does nothing for other envs.

    :param env: the env the block steps
    """
    subproc = find_subproc_env(env)
    if subproc is None:
        yield
        return
    subproc.step_wait = _guarded_step_wait(subproc, subproc.step_wait)  # type: ignore[method-assign]
    try:
        yield
    except (EOFError, BrokenPipeError, ConnectionResetError) as error:
        died = worker_died_error(subproc, grace=5.0)  # a broken pipe: some worker is dead or dying
        if died is not None:
            raise died from error
        raise
    finally:
        subproc.__dict__.pop("step_wait", None)  # the class's own method again


def process_is_gone(pid: int) -> bool:
    """
    Whether process ``pid`` of this host has ended: the one "is this process alive" check of the package (killed
    saves' leftovers, dead tuning workers).

    :param pid: a process id of this host
    :return: ``True`` if no such process runs; ``False`` if it runs or cannot be known (another user's process, or
        Windows, where ``os.kill(pid, 0)`` would terminate it)
    """
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: another user's process, which runs
        return False
    return False


__all__ = ["WorkerDiedError", "explaining_dead_workers", "find_subproc_env", "process_is_gone", "worker_died_error"]
