"""Tuning with Optuna through ``sb3-distill train -optimize``: journal storage, --trial-id, loud failures, teacher cache."""

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from zoo_helpers import TINY, TINY_PARAMS, start_worker, tail, wait_all

import sb3_distill.teachers.loading as loading
from sb3_distill import DistillDQN
from sb3_distill.cli import main
from sb3_distill.zoo import CONVERTERS, TrialError, open_storage

N_TRIALS = 4


def _journal(path: Path) -> optuna.storages.JournalStorage:
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
