"""Tuning with Optuna through ``sb3-distill train -optimize``: journal storage, --trial-id, loud failures, teacher cache."""

import math
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from zoo_helpers import (
    TINY,
    TINY_PARAMS,
    check_no_trial_lost,
    kill,
    running_trial_of,
    start_worker,
    tail,
    tuning_args,
    wait_all,
    worker_env,
)

import sb3_distill.teachers.loading as loading
from sb3_distill import DistillDQN
from sb3_distill.cli import main
from sb3_distill.zoo import CONVERTERS, TrialError, open_storage, tuning
from sb3_distill.zoo.storage import FlockJournalLock, RetryDeadWorkerTrial

# One group of pytest-xdist (`make test` runs on several workers): worker processes killed mid-trial, a lock waited
# for with timeouts and the two-worker study of `journal_study` run in turn on one worker with the other tests that
# run several busy processes at once, and that study is run once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("processes")
N_TRIALS = 4


def _journal(path: Path | str) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


@pytest.fixture(scope="module")
def journal_study(tmp_path_factory):
    """Two worker processes tune one study through one journal file, as on one machine with several cores."""
    root = tmp_path_factory.mktemp("journal")
    storage = root / "study.log"
    args = ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "-optimize", "--storage", str(storage),
            "--study-name", "cartpole", "--max-total-trials", str(N_TRIALS), *TINY, "-params", *TINY_PARAMS]  # fmt: skip
    logs = [root / "worker0.txt", root / "worker1.txt"]
    workers = [start_worker([*args, "--seed", str(seed)], root, log) for seed, log in enumerate(logs)]
    codes = wait_all(workers, logs)
    assert codes == [0, 0], "\n".join(tail(log) for log in logs)
    return root, storage, optuna.load_study(study_name="cartpole", storage=_journal(storage))


def test_two_workers_share_one_journal_file(journal_study):
    _, _, study = journal_study
    complete = study.get_trials(states=[TrialState.COMPLETE])
    # rl-zoo3 counts running trials, yet two workers asking at the same instant may both start the last one.
    assert N_TRIALS <= len(complete) <= N_TRIALS + 1
    assert all(math.isfinite(trial.value) for trial in complete)
    workers = {trial.user_attrs["worker"] for trial in complete}
    assert len(workers) == 2, f"both workers must contribute trials, got {workers}"
    assert not study.get_trials(states=[TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL])


@pytest.mark.parametrize("trial_id", [0, 1])
def test_trial_id_reproduces_the_trial(journal_study, trial_id, tmp_path, monkeypatch):
    _, storage, study = journal_study
    monkeypatch.chdir(tmp_path)
    args = ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "--storage", str(storage), "--study-name",
            "cartpole", "--trial-id", str(trial_id), "-n", "100", "--eval-freq", "-1", "--verbose", "0",
            "-params", *TINY_PARAMS]  # fmt: skip
    assert main(args) == 0
    model = DistillDQN.load(tmp_path / "logs" / "distill_dqn" / "CartPole-v1_1" / "CartPole-v1.zip")
    expected = CONVERTERS["distill_dqn"](study.trials[trial_id].params)
    assert expected, "the trial has no parameters"
    for key, value in expected.items():
        if key == "learning_rate":
            actual = model.lr_schedule(1.0)
        elif key == "train_freq":
            actual = model.train_freq.frequency
        elif key == "policy_kwargs":
            assert model.policy_kwargs["net_arch"] == value["net_arch"]
            continue
        else:
            actual = getattr(model, key)
        assert actual == pytest.approx(value), key


def test_trial_id_of_a_missing_trial(journal_study, tmp_path, monkeypatch, capsys):
    _, storage, _ = journal_study
    monkeypatch.chdir(tmp_path)
    args = ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "--storage", str(storage), "--study-name", "cartpole"]
    assert main([*args, "--trial-id", "99"]) == 2
    assert "no trial 99" in capsys.readouterr().err
    assert main([*args[:-1], "nosuchstudy", "--trial-id", "0"]) == 2
    err = capsys.readouterr().err
    assert "No study 'nosuchstudy'" in err and "(it has: cartpole)" in err


def test_error_inside_learn_fails_the_study_instead_of_pruning(tmp_path, monkeypatch):
    """rl-zoo3 prunes a trial whose learn() raised ValueError; for a student that would hide a real bug."""
    monkeypatch.chdir(tmp_path)
    storage = tmp_path / "study.log"
    args = ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "-optimize", "--storage", str(storage),
            "--study-name", "boom", "--n-trials", "3", *TINY, "-params", *TINY_PARAMS,
            "callback:'zoo_helpers.RaiseInLearn'"]  # fmt: skip
    with pytest.raises(TrialError, match="Trial 0 failed inside learn\\(\\): ValueError: boom inside learn\\(\\)"):
        main(args)
    trials = optuna.load_study(study_name="boom", storage=open_storage(str(storage))).trials
    assert [trial.state for trial in trials] == [TrialState.FAIL]


def test_teacher_is_loaded_once_for_all_trials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loads = []
    original = loading.load_policy_file
    monkeypatch.setattr(
        loading, "load_policy_file", lambda *args, **kwargs: loads.append(args[0]) or original(*args, **kwargs)
    )
    args = ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "-optimize", "--n-trials", "3", *TINY,
            "-n", "200", "-params", *TINY_PARAMS, "teacher:'dqn/Acrobot-v1'"]  # fmt: skip
    args[args.index("--env") + 1] = "Acrobot-v1"  # a teacher no other test loads in this process
    assert main(args) == 0
    assert len(loads) == 1, loads


# ---------------------------------------------------------------------------------------------- killed workers
def test_journal_worker_killed_mid_trial(tmp_path):
    """
    SIGKILL the only worker of a journal study in the middle of a trial: what it leaves behind is that trial, still
    RUNNING (no lock, no half-written line); the next run of the same command fails it, retries it, and completes
    the study.
    """
    storage = str(tmp_path / "study.log")
    logs = [tmp_path / "killed.txt", tmp_path / "next.txt"]
    victim = start_worker(tuning_args(storage, "s", 2, seed=0, n_timesteps=50_000), tmp_path, logs[0])
    left = running_trial_of(open_storage(storage), "s", victim, logs[0])
    kill(victim)

    study = optuna.load_study(study_name="s", storage=_journal(storage))
    assert [(t.number, t.state) for t in study.trials] == [(left.number, TrialState.RUNNING)]
    assert not list(tmp_path.glob("study.log.lock")) and Path(storage).read_bytes().endswith(b"\n")

    # The next run: the same command (here with a shorter budget).
    assert wait_all([start_worker(tuning_args(storage, "s", 2, seed=1), tmp_path, logs[1])], logs[1:]) == [0]
    study = optuna.load_study(study_name="s", storage=_journal(storage))
    failed = check_no_trial_lost(study, 2, workers=1)
    assert list(failed) == [left.number]
    assert "belonged to workers that died" in logs[1].read_text()


def test_journal_survivor_retries_a_killed_workers_trial(tmp_path):
    """Two workers: the one killed mid-trial is found dead by its process id, and the other one runs its retry."""
    storage = str(tmp_path / "study.log")
    logs = [tmp_path / "survivor.txt", tmp_path / "victim.txt"]
    survivor = start_worker(tuning_args(storage, "s", N_TRIALS, seed=0), tmp_path, logs[0])
    victim = start_worker(tuning_args(storage, "s", N_TRIALS, seed=1, n_timesteps=50_000), tmp_path, logs[1])
    left = running_trial_of(open_storage(storage), "s", victim, logs[1])
    kill(victim)
    assert wait_all([survivor], logs[:1]) == [0], tail(logs[0])
    study = optuna.load_study(study_name="s", storage=_journal(storage))
    assert list(check_no_trial_lost(study, N_TRIALS)) == [left.number]
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == left.number]
    assert retry.user_attrs["worker"].endswith(f":{survivor.pid}")


def test_half_written_journal_line_is_removed(tmp_path):
    """A worker killed in the middle of a write, or a full disk, leaves half a line: the next open removes it."""
    path = tmp_path / "study.log"
    study = optuna.create_study(study_name="s", storage=open_storage(str(path)))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    whole = path.read_bytes()
    with open(path, "ab") as file:
        file.write(whole.splitlines()[-1][:25])
    with pytest.warns(UserWarning, match="removed the last 25 bytes"):
        storage = open_storage(str(path))
    assert path.read_bytes() == whole
    optuna.load_study(study_name="s", storage=storage).optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert len(optuna.load_study(study_name="s", storage=_journal(path)).trials) == 4


def test_journal_lock_dies_with_its_holder(tmp_path):
    """Optuna's symlink lock outlives a killed holder (30 s stall); ours is released by the kernel at once."""
    path = str(tmp_path / "study.log")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from sb3_distill.zoo.storage import FlockJournalLock; "
         f"lock = FlockJournalLock({path!r}); lock.acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=worker_env(),
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        lock, acquired = FlockJournalLock(path), threading.Event()
        waiter = threading.Thread(target=lambda: lock.acquire() and acquired.set(), daemon=True)
        waiter.start()
        assert not acquired.wait(0.5), "the lock does not exclude another process"
        kill(holder)
        assert acquired.wait(5), "the lock of a killed process was not released"
        lock.release()
    finally:
        if holder.poll() is None:
            kill(holder)
        holder.stdout.close()  # type: ignore[union-attr]


def test_which_journal_workers_are_dead(tmp_path, monkeypatch):
    """A worker is dead when its process is gone, or its pid now belongs to another process, or it never said who it was."""
    study = optuna.create_study(study_name="s", storage=open_storage(str(tmp_path / "study.log")))
    host = socket.gethostname()
    started = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    def running(**attrs: str) -> int:
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return trial.number

    alive = running(worker=f"{host}:{os.getpid()}", worker_start=started)
    dead = running(worker=f"{host}:{gone.pid}", worker_start="1")
    recycled = running(worker=f"{host}:{os.getpid()}", worker_start="1")  # this pid, another process start
    elsewhere = running(worker="another-host:1")  # cannot tell: left to its worker
    orphan = running()
    assert tuning.recover_dead_workers(study, heartbeat=False) == [dead, recycled]
    monkeypatch.setattr(tuning, "ORPHAN_AFTER", 0)
    assert tuning.recover_dead_workers(study, heartbeat=False) == [orphan]
    assert tuning.recover_dead_workers(study, heartbeat=False) == [], "a second pass fails nothing more"

    trials = study.get_trials()
    assert [trials[n].state for n in (alive, elsewhere)] == [TrialState.RUNNING] * 2
    retries = {t.system_attrs["failed_trial"]: t for t in trials if t.state == TrialState.WAITING}
    assert sorted(retries) == [dead, recycled, orphan]
    for number, retry in retries.items():
        assert trials[number].state == TrialState.FAIL and retry.params == trials[number].params
        assert "worker" not in retry.user_attrs, "a retry must not look like the dead worker's"


def test_worker_taken_for_dead_drops_its_result_and_goes_on(tmp_path):
    """A stalled worker whose trial another worker failed and queued again: it warns, and runs the retry itself."""
    path = str(tmp_path / "study.log")
    study = optuna.create_study(study_name="s", storage=open_storage(path))
    other = optuna.load_study(study_name="s", storage=open_storage(path))  # the worker that takes this one for dead

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            frozen = next(t for t in other.get_trials() if t.number == 0)
            other.tell(0, state=TrialState.FAIL)
            RetryDeadWorkerTrial()(other, frozen)
        return x

    with pytest.warns(UserWarning, match="Trial 0 was failed by another worker, which took this one for dead"):
        tuning.optimize(study, objective, heartbeat=False, n_trials=1, max_total_trials=2)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[1].system_attrs["failed_trial"] == 0 and trials[1].params == trials[0].params
