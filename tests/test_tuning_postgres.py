"""
Distributed tuning on a real PostgreSQL server (started here on a free loopback port, from the system's binaries):
workers racing to set up an empty database, and four workers on one study, two of them killed with SIGKILL.
"""

import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import optuna
import pytest
from optuna.trial import TrialState
from zoo_helpers import (
    check_no_trial_lost,
    create_database,
    kill,
    postgres_server,
    running_trial_of,
    start_worker,
    tail,
    tuning_args,
    wait_all,
)

from sb3_distill.zoo import open_storage

# One group of pytest-xdist (`make test` runs on several workers): the tests that run several busy processes at once
# and time them (2-s heartbeats here) run in turn on one worker, and this module's server is started once.
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("processes")]
N_TRIALS = 4
N_KILLED_TRIALS = 8


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


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


def test_four_workers_two_killed_at_random_moments(postgres_url, tmp_path):
    """
    Four workers on one study, two of them SIGKILLed: one at a random moment of one of its trials, the other at a
    random moment of its life (starting, creating the study, sampling, learning, reporting...). The heartbeat fails
    the trials they leave, the survivors retry them, and the study completes its --max-total-trials: no trial lost,
    none counted twice.
    """
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    heartbeat = {"SB3_DISTILL_HEARTBEAT": "2"}
    logs = [tmp_path / f"worker{index}.txt" for index in range(4)]
    workers = [
        start_worker(tuning_args(postgres_url, "four", N_KILLED_TRIALS, seed=index), tmp_path, log, **heartbeat)
        for index, log in enumerate(logs)
    ]
    survivors, (mid_trial, anytime) = workers[:2], workers[2:]
    kill_anytime_after = rng.uniform(0, 25)
    timer = threading.Timer(kill_anytime_after, lambda: anytime.poll() is None and kill(anytime))
    timer.start()
    storage = open_storage(postgres_url)
    seen = running_trial_of(storage, "four", mid_trial, logs[2])
    time.sleep(rng.uniform(0, 0.3))
    kill(mid_trial)
    timer.join()
    killed_at = f"seed {seed}: the second victim was killed {kill_anytime_after:.1f} s after the start"

    assert wait_all(survivors, logs[:2], timeout=300) == [0, 0], f"{killed_at}\n" + "\n".join(map(tail, logs))
    study = _study(storage, "four")
    failed = check_no_trial_lost(study, N_KILLED_TRIALS, workers=4)
    victims = {f":{worker.pid}" for worker in (mid_trial, anytime)}
    # A loaded machine may let a tiny trial finish in the instant before the kill: then there is nothing to fail.
    if study.trials[seen.number].state != TrialState.COMPLETE:
        assert failed, f"the trial being learned by the worker killed mid-trial was not failed ({killed_at})"
    for trial in failed.values():
        assert any(trial.user_attrs.get("worker", "").endswith(victim) for victim in victims), (killed_at, trial.user_attrs)
    complete = study.get_trials(states=[TrialState.COMPLETE])
    assert all(math.isfinite(trial.value) for trial in complete)
    for survivor in survivors:
        assert any(trial.user_attrs["worker"].endswith(f":{survivor.pid}") for trial in complete), "a survivor ran no trial"
    finished = len(study.get_trials(states=[TrialState.COMPLETE, TrialState.PRUNED]))
    print(f"{killed_at}; failed and retried: {sorted(failed)}; finished trials: {finished} of {len(study.trials)}")
