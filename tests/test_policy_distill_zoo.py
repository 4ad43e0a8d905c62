"""PolicyDistill's packaged MuJoCo entries with rl-zoo3, and ``data_policy: lin_X`` (the teacher share as a schedule)."""

import argparse
from pathlib import Path

import pytest
import yaml
from sb3_contrib.common.wrappers import TimeFeatureWrapper
from stable_baselines3.common.utils import LinearSchedule

from sb3_distill import PolicyDistill
from sb3_distill.errors import TeacherNotFoundError
from sb3_distill.zoo import HYPERPARAMS_DIR, ConfigError, DistillExperimentManager, check_hyperparams_keys, register
from sb3_distill.zoo.config import convert_teacher_share

HYPERPARAMS = HYPERPARAMS_DIR / "policy_distill.yml"
#: The MuJoCo entries and their zoo ids; tests/data/zoo holds the first two teachers.
MUJOCO = {"HalfCheetah-v5": "sac/HalfCheetah-v3", "Walker2d-v5": "ppo/Walker2d-v3"}
NOT_MEASURED = {"Hopper-v5": "sac/Hopper-v3", "Swimmer-v5": "sac/Swimmer-v3"}


def _manager(env_id: str, log_folder: Path, **params) -> DistillExperimentManager:
    register()
    return DistillExperimentManager(
        argparse.Namespace(), "policy_distill", env_id, str(log_folder), hyperparams=params or None, device="cpu", verbose=0
    )


@pytest.fixture
def in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no ./logs nor ./rl-trained-agents to find a teacher in
    monkeypatch.delenv("SB3_DISTILL_ZOO", raising=False)
    monkeypatch.delenv("SB3_DISTILL_TRUST_REMOTE_CODE", raising=False)
    return tmp_path


@pytest.mark.parametrize("env_id", sorted(MUJOCO))
def test_mujoco_entries_build_with_rl_zoo3(env_id: str, zoo_dir: Path, in_empty_folder: Path, monkeypatch):
    """The packaged entry (no -conf) finds its teacher in $SB3_DISTILL_ZOO and its teacher's wrappers, and trains (a
    smoke run of 150 steps: the entries' learning is measured by the benchmark's mujoco suite)."""
    monkeypatch.setenv("SB3_DISTILL_ZOO", str(zoo_dir))
    manager = _manager(env_id, in_empty_folder / "logs")
    model, saved = manager.setup_experiment()
    assert isinstance(model, PolicyDistill) and str(zoo_dir) in model.teachers[0].source
    assert model.distill_value_coef == 0.0 and model.lr_schedule(1.0) == 3e-3
    # lin_1.0: the teacher acts at the start and the student at the end, linearly in between
    assert isinstance(model.data_policy, LinearSchedule) and saved["data_policy"] == "lin_1.0"
    assert [model.teacher_share_fn(progress) for progress in (1.0, 0.5, 0.0)] == [1.0, 0.5, 0.0]
    wrapped = env_id == "Walker2d-v5"  # the PPO agent was trained with a TimeFeatureWrapper
    assert model.env.env_is_wrapped(TimeFeatureWrapper) == [wrapped]
    # The student trains under its own observation statistics; the teacher normalizes the raw observations itself.
    student_statistics = model.get_vec_normalize_env()
    assert student_statistics is not None and student_statistics.norm_obs and not student_statistics.norm_reward
    model.learn(150)
    assert model.num_timesteps == 150 and model._n_updates > 0
    model.env.close()


@pytest.mark.parametrize("env_id", sorted(NOT_MEASURED))
def test_unmeasured_mujoco_entries_parse_and_convert(env_id: str):
    entries = yaml.safe_load(HYPERPARAMS.read_text())
    entry = dict(entries[env_id])
    assert entry["teacher"] == NOT_MEASURED[env_id]
    hyperparams = {key: value for key, value in entry.items() if key not in ("n_timesteps", "normalize")}  # rl-zoo3's keys
    hyperparams["policy_kwargs"] = eval(hyperparams["policy_kwargs"])
    convert_teacher_share(hyperparams, str(HYPERPARAMS))
    check_hyperparams_keys("policy_distill", PolicyDistill, hyperparams, str(HYPERPARAMS))
    schedule = hyperparams["data_policy"]
    assert isinstance(schedule, LinearSchedule) and (schedule(1.0), schedule(0.0)) == (1.0, 0.0)
    assert hyperparams["distill_value_coef"] == 0.0


def test_every_mujoco_entry_says_its_teacher_is_not_bundled():
    text = HYPERPARAMS.read_text()
    assert "NOT BUNDLED" in text and "SB3_DISTILL_ZOO" in text and "NOT MEASURED" in text
    entries = yaml.safe_load(text)
    for env_id, spec in {**MUJOCO, **NOT_MEASURED}.items():
        assert entries[env_id]["teacher"] == spec
        assert entries[env_id]["data_policy"] == "lin_1.0" and entries[env_id]["n_timesteps"] == 20_000


def test_a_zoo_id_not_found_names_the_zoo_folder_option(in_empty_folder: Path):
    manager = _manager("HalfCheetah-v5", in_empty_folder / "logs")
    with pytest.raises(TeacherNotFoundError, match=r"(?s)sac/HalfCheetah-v3.*SB3_DISTILL_ZOO=/path/to/rl-trained-agents"):
        manager.setup_experiment()
    assert not (in_empty_folder / "logs").exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("lin_1.0", [1.0, 0.5, 0.0]), ("lin_0.5", [0.5, 0.25, 0.0]), ("student", "student"), ("teacher", "teacher"), (0.3, 0.3)],
)
def test_teacher_share_reads_rl_zoo3_linear_schedules(value, expected):
    hyperparams = convert_teacher_share({"data_policy": value, "learning_rate": "lin_1e-3"}, "x.yml")
    assert hyperparams["learning_rate"] == "lin_1e-3"  # rl-zoo3's own keys are rl-zoo3's to convert
    converted = hyperparams["data_policy"]
    if isinstance(expected, list):
        assert isinstance(converted, LinearSchedule)
        assert [converted(progress) for progress in (1.0, 0.5, 0.0)] == pytest.approx(expected)
    else:
        assert converted == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lin_1.5", r"lin_1.5 .*must be a number in \[0, 1\], e.g. lin_1.0"),
        ("lin_x", r"lin_x .*must be a number in \[0, 1\]"),
        ("linear_1.0", r"Unknown data_policy 'linear_1.0'.*lin_1.0 for a linear decay"),
        (1.5, r"a teacher share must be in \[0, 1\]"),
    ],
)
def test_bad_teacher_share_fails_before_any_file(value, message, zoo_dir: Path, in_empty_folder: Path, monkeypatch):
    with pytest.raises(ConfigError, match=message):
        convert_teacher_share({"data_policy": value}, "x.yml")
    # Through rl-zoo3 (as -params data_policy:...): the error comes before rl-zoo3 creates the log folder.
    monkeypatch.setenv("SB3_DISTILL_ZOO", str(zoo_dir))
    manager = _manager("HalfCheetah-v5", in_empty_folder / "logs", data_policy=value)
    with pytest.raises(ConfigError, match=message):
        manager.setup_experiment()
    assert not (in_empty_folder / "logs").exists()
