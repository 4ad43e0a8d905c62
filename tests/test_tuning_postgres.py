"""
Distributed tuning on a real PostgreSQL server (started here on a free loopback port, from Debian's binaries):
several workers on one study, and a worker killed with SIGKILL in the middle of a trial.
"""

import math
import time
from concurrent.futures import ThreadPoolExecutor

import optuna
import pytest
from optuna.trial import TrialState
from zoo_helpers import TINY, TINY_PARAMS, create_database, kill, postgres_server, start_worker, tail, wait_all

from sb3_distill.zoo import open_storage

pytestmark = pytest.mark.postgres
N_TRIALS = 4


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


def _worker_args(url: str, study: str, seed: int, n_timesteps: int = 600) -> list[str]:
    return ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "-optimize", "--storage", url,
            "--study-name", study, "--max-total-trials", str(N_TRIALS), *TINY, "-n", str(n_timesteps),
            "--seed", str(seed), "-params", *TINY_PARAMS]  # fmt: skip


def _study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def test_workers_starting_together_on_an_empty_database(postgres_url):
    """They race to create Optuna's tables; every one of them must get a working storage."""
    url = create_database(postgres_url, "race")
    with ThreadPoolExecutor(4) as pool:
        storages = list(pool.map(lambda _: open_storage(url), range(4)))
    for storage in storages:
        assert isinstance(storage, optuna.storages.RDBStorage) and storage.heartbeat_interval == 60
    assert optuna.get_all_study_names(storages[0]) == []


def test_two_workers_on_one_postgres_study(postgres_url, tmp_path):
    logs = [tmp_path / "worker0.txt", tmp_path / "worker1.txt"]
    workers = [start_worker(_worker_args(postgres_url, "shared", seed), tmp_path, log) for seed, log in enumerate(logs)]
    assert wait_all(workers, logs) == [0, 0], "\n".join(tail(log) for log in logs)
    study = _study(open_storage(postgres_url), "shared")
    complete = study.get_trials(states=[TrialState.COMPLETE])
    assert N_TRIALS <= len(complete) <= N_TRIALS + 1
    assert all(math.isfinite(trial.value) for trial in complete)
    workers_seen = {trial.user_attrs["worker"] for trial in complete}
    assert len(workers_seen) == 2, f"both workers must contribute trials, got {workers_seen}"
    assert not study.get_trials(states=[TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL])


def test_killed_worker_does_not_stall_the_study(postgres_url, tmp_path):
    """SIGKILL a worker in the middle of a trial: the heartbeat fails its trial, the survivor retries it and finishes."""
    heartbeat = {"SB3_DISTILL_HEARTBEAT": "1"}
    logs = [tmp_path / "survivor.txt", tmp_path / "victim.txt"]
    survivor = start_worker(_worker_args(postgres_url, "killed", 0), tmp_path, logs[0], **heartbeat)
    # The victim's trials are longer, so that it is surely caught in the middle of one.
    victim = start_worker(_worker_args(postgres_url, "killed", 1, n_timesteps=20_000), tmp_path, logs[1], **heartbeat)
    victim_tag = f":{victim.pid}"
    storage = open_storage(postgres_url)  # one connection pool for all the polling below
    deadline = time.monotonic() + 90
    victim_trial = None
    while victim_trial is None:
        assert time.monotonic() < deadline and victim.poll() is None, tail(logs[1])
        time.sleep(0.2)
        try:
            running = _study(storage, "killed").get_trials(states=[TrialState.RUNNING])
        except KeyError:  # the study is not created yet
            continue
        victim_trial = next((t for t in running if t.user_attrs.get("worker", "").endswith(victim_tag)), None)
        if victim_trial is not None and "recipe" not in victim_trial.params:
            victim_trial = None  # still sampling: wait until it learns
    time.sleep(0.5)
    kill(victim)

    assert wait_all([survivor], logs[:1]) == [0], tail(logs[0])
    study = _study(storage, "killed")
    failed = study.trials[victim_trial.number]
    assert failed.state == TrialState.FAIL
    retries = [trial for trial in study.trials if trial.system_attrs.get("failed_trial") == failed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == failed.params and retries[0].user_attrs["worker"] != failed.user_attrs["worker"]
    assert len(study.get_trials(states=[TrialState.COMPLETE])) >= N_TRIALS
    assert not study.get_trials(states=[TrialState.RUNNING, TrialState.WAITING])
