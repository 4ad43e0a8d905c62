"""Helpers of the rl-zoo3 / Optuna tests: ``sb3-distill`` worker processes and a throw-away PostgreSQL server."""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from stable_baselines3.common.callbacks import BaseCallback

#: A tiny tuning budget: a few hundred env steps per trial, two evaluation episodes, no pruning, no plots.
TINY = "-n 600 --eval-episodes 2 --n-evaluations 1 --sampler random --pruner none --no-optim-plots --num-threads 1".split()
#: Learn from the start, with a small replay buffer (rl-zoo3 keeps only the last -params: add yours to these).
TINY_PARAMS = ["learning_starts:100", "buffer_size:2000"]


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker process: one thread (two shared cores), no plots, unbuffered output."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg", **extra)
    return env


def start_worker(args: Sequence[str], cwd: Path, log: Path, **env: str) -> subprocess.Popen:
    """
    :param args: arguments of ``sb3-distill``
    :param cwd: working directory (rl-zoo3 writes ``logs/`` there)
    :param log: file receiving stdout and stderr
    :param env: extra environment variables
    :return: the running ``python -m sb3_distill ARGS`` process
    """
    with open(log, "w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "sb3_distill", *args],
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=worker_env(**env),
        )


def wait_all(processes: Sequence[subprocess.Popen], logs: Sequence[Path], timeout: float = 150) -> list[int]:
    """Wait for every process; kill them all and fail, with their logs, if one hangs."""
    deadline = time.monotonic() + timeout
    codes = []
    try:
        for process in processes:
            codes.append(process.wait(timeout=max(deadline - time.monotonic(), 1)))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
            process.wait()
        pytest.fail("a worker hung:\n" + "\n\n".join(tail(log) for log in logs))
    return codes


def tail(log: Path, lines: int = 40) -> str:
    return f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------- PostgreSQL
def postgres_bin_dir() -> Path | None:
    """Debian's PostgreSQL binaries (``apt-get install postgresql``), or the ones on the PATH."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(Path(path).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as(user: pwd.struct_passwd | None):
    """initdb refuses to run as root: under root, run the server as an unprivileged user."""
    if user is None:
        return None

    def demote() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return demote


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """
    Start a PostgreSQL server of our own on a free loopback port (fresh cluster, trust authentication), yield the URL
    of an empty database on it, then stop the server and delete the cluster.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL is not installed (no pg_ctl/initdb on the PATH or in /usr/lib/postgresql/*/bin): these tests "
            "start a server of their own from its binaries. Install it with `make postgres` or `apt-get install -y "
            "postgresql`."
        )
    user = None
    if os.geteuid() == 0:
        name = "postgres" if _user_exists("postgres") else "nobody"
        user = pwd.getpwnam(name)
    root = Path(tempfile.mkdtemp(prefix="sb3-distill-pg-"))
    data = root / "data"
    data.mkdir()
    if user is not None:
        for path in (root, data):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    demote = _run_as(user)
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(
        [bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, preexec_fn=demote, env=env, cwd=root,
    )  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=100"
    subprocess.run(
        [bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", root / "server.log", "-w", "-t", "60", "start"],
        check=True, capture_output=True, preexec_fn=demote, env=env, cwd=root,
    )  # fmt: skip
    try:
        yield create_database(f"postgresql://postgres@127.0.0.1:{port}/postgres", "optuna")
    finally:
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            capture_output=True, preexec_fn=demote, env=env, cwd=root,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """
    :param server_url: URL of any database of the server (``.../postgres``)
    :param name: the new, empty database
    :return: its URL
    """
    import psycopg2

    base, _ = server_url.rsplit("/", 1)
    connection = psycopg2.connect(server_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    return f"{base}/{name}"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def kill(process: subprocess.Popen) -> None:
    """SIGKILL: no exception handler, no atexit, no last heartbeat."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


class RaiseInLearn(BaseCallback):
    """A callback that fails inside ``learn()``, as a broken loss or teacher would (``-params callback:...``)."""

    def _on_step(self) -> bool:
        if self.num_timesteps >= 50:
            raise ValueError("boom inside learn()")
        return True


def write_run_folder(log_dir: Path, algo: str, env_id: str, model: Any, hyperparams: dict[str, Any]) -> Path:
    """
    Save a model in rl-zoo3's layout, as ``train.py`` leaves it: ``LOG_DIR/ALGO/ENV_1/ENV.zip`` and
    ``ENV_1/ENV/config.yml`` (an ``OrderedDict`` of the run's hyperparameters, sorted as rl-zoo3 writes them).

    :param log_dir: the ``logs`` folder
    :param algo: rl-zoo3 name of the model's algorithm
    :param env_id: the env
    :param model: the trained (or freshly built) model
    :param hyperparams: the run's hyperparameters (``env_wrapper``, ``frame_stack``, ...)
    :return: the run folder
    """
    run = log_dir / algo / f"{env_id}_1"
    (run / env_id).mkdir(parents=True)
    model.save(run / f"{env_id}.zip")
    with open(run / env_id / "config.yml", "w") as file:
        yaml.dump(OrderedDict(sorted(hyperparams.items())), file)
    return run


def tuning_args(storage: str, study: str, max_trials: int, seed: int, n_timesteps: int = 600) -> list[str]:
    """``sb3-distill train`` arguments of a worker of a DistillDQN CartPole study with a tiny budget."""
    return ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "-optimize", "--storage", storage,
            "--study-name", study, "--max-total-trials", str(max_trials), *TINY, "-n", str(n_timesteps),
            "--seed", str(seed), "-params", *TINY_PARAMS]  # fmt: skip


def load_study(storage: Any, name: str) -> Any:
    """:return: the study, or ``None`` while no worker has created it"""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def running_trial_of(storage: Any, study_name: str, worker: subprocess.Popen, log: Path, timeout: float = 120) -> Any:
    """
    Wait until ``worker`` runs a trial whose hyperparameters are sampled (it is learning), and return it.

    :param storage: the study's storage (opened once: polling it must not open a connection each time)
    :param study_name: the study
    :param worker: the worker process
    :param log: its output, shown if it dies first
    :param timeout: seconds
    :return: the running ``FrozenTrial``
    """
    from optuna.trial import TrialState

    tag = f":{worker.pid}"
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline and worker.poll() is None, tail(log)
        time.sleep(0.2)
        study = load_study(storage, study_name)
        running = study.get_trials(states=[TrialState.RUNNING]) if study is not None else []
        for trial in running:
            if str(trial.user_attrs.get("worker", "")).endswith(tag) and "recipe" in trial.params:
                return trial


def check_no_trial_lost(study: Any, max_trials: int, workers: int = 2) -> dict[int, Any]:
    """
    The guarantees of a study whose workers were killed: at least ``max_trials`` finished trials, nothing left
    running or waiting, every failed trial retried once with its parameters (those it had: a trial killed while it was
    being sampled is retried with them, the rest sampled anew), and no trial completed twice (an original and its
    retry, or two retries of one original).

    :param study: the study
    :param max_trials: its ``--max-total-trials``
    :param workers: how many workers ran at once (each may start one trial beyond the budget: see below)
    :return: the failed trials by number
    """
    from optuna.trial import TrialState

    trials = study.get_trials()
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    # rl-zoo3 counts running trials, yet workers asking at the same instant may all start the last one.
    assert max_trials <= len(finished) <= max_trials + workers - 1, [(t.number, t.state.name) for t in trials]
    failed = {t.number: t for t in trials if t.state == TrialState.FAIL}
    originals = [t.system_attrs.get("failed_trial", t.number) for t in finished]
    assert len(originals) == len(set(originals)), f"a trial was counted twice: {sorted(originals)}"
    for number, trial in failed.items():
        retries = [t for t in trials if t.system_attrs.get("retry_history", [None])[-1] == number]
        assert len(retries) == 1, f"trial {number} failed and was retried {len(retries)} times"
        # with its parameters: all of them, or those sampled before the kill (the retry samples the rest)
        assert trial.params.items() <= retries[0].params.items(), (trial.params, retries[0].params)
    return failed
