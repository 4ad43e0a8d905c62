"""PolicyDistill's packaged MuJoCo entries with rl-zoo3, and ``data_policy: lin_X`` (the teacher share as a schedule)."""

import argparse
from pathlib import Path

import pytest
import torch as th
import yaml
from sb3_contrib.common.wrappers import TimeFeatureWrapper
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule

from sb3_distill import PolicyDistill
from sb3_distill.errors import TeacherNotFoundError
from sb3_distill.teachers import count_parameters
from sb3_distill.zoo import HYPERPARAMS_DIR, ConfigError, DistillExperimentManager, check_hyperparams_keys, register
from sb3_distill.zoo.config import convert_teacher_share

HYPERPARAMS = HYPERPARAMS_DIR / "policy_distill.yml"
#: The MuJoCo entries and their zoo ids: tests/data/zoo holds the teachers of MUJOCO, not those of NOT_IN_TESTS.
MUJOCO = {"HalfCheetah-v5": "sac/HalfCheetah-v3", "Hopper-v5": "tqc/Hopper-v3", "Swimmer-v5": "sac/Swimmer-v3"}
NOT_IN_TESTS = {"Walker2d-v5": "sac/Walker2d-v3"}


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
    # HalfCheetah's entry is the 10% student of the earlier settings; Hopper's and Swimmer's the 5% ones of the current.
    current = env_id != "HalfCheetah-v5"
    assert model.ema_tau == (0.01 if current else None)
    assert model.policy_kwargs.get("activation_fn", th.nn.Tanh) is (th.nn.ReLU if current else th.nn.Tanh)
    # lin_1.0: the teacher acts at the start and the student at the end, linearly in between
    assert isinstance(model.data_policy, LinearSchedule) and saved["data_policy"] == "lin_1.0"
    assert [model.teacher_share_fn(progress) for progress in (1.0, 0.5, 0.0)] == [1.0, 0.5, 0.0]
    assert model.env.env_is_wrapped(TimeFeatureWrapper) == [False]  # their config.yml has no env_wrapper
    # The student learns under its own observation statistics; the teacher normalizes the raw observations itself.
    student_statistics = model.get_vec_normalize_env()
    assert student_statistics is not None and student_statistics.norm_obs and not student_statistics.norm_reward
    model.learn(150)
    assert model.num_timesteps == 150 and model._n_updates > 0
    model.env.close()


@pytest.mark.parametrize("env_id", sorted(NOT_IN_TESTS))
def test_other_mujoco_entries_parse_and_convert(env_id: str):
    entries = yaml.safe_load(HYPERPARAMS.read_text())
    entry = dict(entries[env_id])
    assert entry["teacher"] == NOT_IN_TESTS[env_id]
    hyperparams = {key: value for key, value in entry.items() if key not in ("n_timesteps", "normalize")}  # rl-zoo3's keys
    hyperparams["policy_kwargs"] = eval(hyperparams["policy_kwargs"], {"nn": th.nn})  # as rl-zoo3 evaluates it
    convert_teacher_share(hyperparams, str(HYPERPARAMS))
    check_hyperparams_keys("policy_distill", PolicyDistill, hyperparams, str(HYPERPARAMS))
    schedule = hyperparams["data_policy"]
    assert isinstance(schedule, LinearSchedule) and (schedule(1.0), schedule(0.0)) == (1.0, 0.0)
    assert hyperparams["distill_value_coef"] == 0.0


def test_every_mujoco_entry_says_its_teacher_is_not_bundled():
    text = HYPERPARAMS.read_text()
    assert "NOT BUNDLED" in text and "SB3_DISTILL_ZOO" in text
    entries = yaml.safe_load(text)
    for env_id, spec in {**MUJOCO, **NOT_IN_TESTS}.items():
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


class _StopAt(BaseCallback):
    """Stop ``learn()`` after ``steps`` env steps (the schedules keep the entry's own ``n_timesteps``)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def _on_step(self) -> bool:
        return self.num_timesteps < self.steps


def _normalized_return(model, env, reference: tuple[float, float], n_episodes: int = 3) -> float:
    env.seed(100)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True)
    return (mean - reference[0]) / (reference[1] - reference[0])


def test_swimmer_entry_distills_a_5_percent_student_to_teacher_level_where_ppo_from_scratch_does_not(
    zoo_dir: Path, in_empty_folder: Path, monkeypatch
):
    """
    The packaged Swimmer-v5 entry, as a user runs it (rl-zoo3, the teacher found in $SB3_DISTILL_ZOO): its MuJoCo
    settings (batch 1024, ReLU, ema_tau 0.01, the teacher's share decaying over the entry's 20k env steps, the
    student's own VecNormalize) give a student of 5% of the zoo's SAC actor at teacher level after 2,500 env steps
    (0.25% of the teacher's own 1M; docs/benchmarks.md, "MuJoCo": 0.99-1.01 there in every seed). The control, PPO
    from scratch for the same 2,500 env steps, stays far below: Swimmer is not solved by any policy.
    """
    monkeypatch.setenv("SB3_DISTILL_ZOO", str(zoo_dir))
    model, _ = _manager("Swimmer-v5", in_empty_folder / "logs").setup_experiment()
    teacher = model.teachers[0]
    assert count_parameters(model.policy.mlp_extractor.policy_net) + count_parameters(model.policy.action_net) <= (
        0.05 * teacher.num_parameters
    )
    reference = teacher.reference_returns(n_episodes=3, seed=0)
    model.learn(20_000, callback=_StopAt(BUDGET))
    assert model.num_timesteps == BUDGET
    student_env = model.get_vec_normalize_env()
    student_env.training = False  # its statistics as fitted, frozen
    student = _normalized_return(model, model.env, reference)

    control = PPO("MlpPolicy", teacher.make_env(seed=0), n_steps=500, batch_size=100, seed=0, device="cpu")
    control.learn(BUDGET)
    scratch = _normalized_return(control, control.env, reference)
    print(f"Swimmer-v5 after {BUDGET} env steps: student {student:.2f}, PPO from scratch {scratch:.2f} (teacher 1.00)")
    assert student >= 0.9 and scratch < 0.5


#: Env steps of the Swimmer learning test (the MuJoCo suite's first evaluation)
BUDGET = 2_500
