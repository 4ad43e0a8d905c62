"""MuJoCo zoo agents recorded on ``-v3``: mapped to today's version with the same spaces, in the env rl-zoo3 built."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from sb3_contrib.common.wrappers import TimeFeatureWrapper
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import unwrap_vec_normalize

from sb3_distill import load_teacher
from sb3_distill.errors import IncompatibleTeacherError

# (run folder, today's env, minimum return of one deterministic episode): the zoo published 9,535 (SAC HalfCheetah)
# and 3,479 ± 821 (PPO Walker2d) on -v3.
MUJOCO_AGENTS = [
    ("sac/HalfCheetah-v3_1", "HalfCheetah-v5", 9_000.0),
    ("ppo/Walker2d-v3_1", "Walker2d-v5", 3_000.0),
]


@pytest.mark.parametrize(("run", "env_id", "score"), MUJOCO_AGENTS)
def test_v3_agents_play_their_score_in_their_own_env(
    zoo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: str, env_id: str, score: float
) -> None:
    monkeypatch.chdir(tmp_path)
    teacher = load_teacher(zoo_dir / run)
    assert teacher.env_id == env_id
    env = teacher.make_env(seed=0)
    assert env.env_is_wrapped(Monitor)[0] and unwrap_vec_normalize(env) is None
    mean, _ = evaluate_policy(teacher, env, n_eval_episodes=1)
    assert mean >= score
    # MuJoCo logs its warnings (there is one on every HalfCheetah build) outside the working directory.
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_teacher_wrappers_are_rebuilt_and_required(zoo_dir: Path) -> None:
    """ppo/Walker2d-v3_1 was trained with TimeFeatureWrapper and VecNormalize (config.yml)."""
    teacher = load_teacher(zoo_dir / "ppo/Walker2d-v3_1")
    assert teacher.obs_normalizer is not None
    env = teacher.make_env(n_envs=2, seed=0)
    assert env.num_envs == 2 and env.env_is_wrapped(TimeFeatureWrapper) == [True, True]
    assert env.observation_space.shape == teacher.observation_space.shape == (18,)
    with pytest.raises(
        IncompatibleTeacherError,
        match=r"observation space Box\(shape=\(18,\)\) vs the env.s Box\(shape=\(17,\)\).*teacher\.make_env\(\)",
    ):
        load_teacher(teacher, env=gym.make("Walker2d-v5"))


class _SpacesEnv(gym.Env):
    """An env with given spaces only, to save agents of envs whose files we do not have."""

    def __init__(self, obs_dim: int, action_dim: int) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(self.observation_space.shape), 0.0, True, False, {}


def _zoo_run(root: Path, algo: str, env_id: str, obs_dim: int, action_dim: int) -> Path:
    """An rl-zoo3 run folder ``root/algo/ENV_1`` with a small agent on the given spaces."""
    run = root / algo / f"{env_id}_1"
    (run / env_id).mkdir(parents=True)
    model = SAC(
        "MlpPolicy", _SpacesEnv(obs_dim, action_dim), learning_starts=10**6, buffer_size=10, policy_kwargs={"net_arch": [8]}
    )
    model.save(run / f"{env_id}.zip")
    return run


def test_agents_whose_spaces_changed_are_refused(tmp_path: Path) -> None:
    # Ant-v3 observed 111 values (contact forces included); Ant-v5 observes 105 and Ant-v4 27.
    with pytest.raises(IncompatibleTeacherError) as error:
        load_teacher(_zoo_run(tmp_path, "sac", "Ant-v3", 111, 8))
    message = str(error.value)
    for part in ("Ant-v3", "(111,)", "Ant-v5", "(105,)", "contact forces", "ALGO.load"):
        assert part in message
    # Humanoid-v4 still observes Humanoid-v3's 376 values: mapped, with a warning on what differs inside.
    with pytest.warns(UserWarning, match="contact forces"):
        assert load_teacher(_zoo_run(tmp_path, "sac", "Humanoid-v3", 376, 17)).env_id == "Humanoid-v4"


def test_spaces_are_probed_once_per_process(zoo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sb3_distill.teachers import envs

    load_teacher(zoo_dir / "sac/HalfCheetah-v3_1")
    builds: list[str] = []
    original = envs.make_teacher_env
    monkeypatch.setattr(
        envs, "make_teacher_env", lambda env_id, *args, **kwargs: builds.append(env_id) or original(env_id, *args, **kwargs)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mapping warning for HalfCheetah
        assert load_teacher(zoo_dir / "sac/HalfCheetah-v3_1").env_id == "HalfCheetah-v5"
    assert builds == []


def test_missing_mujoco_names_the_extra(zoo_dir: Path) -> None:
    # A fresh interpreter in which `import mujoco` fails, as on a machine without the extra.
    code = (
        "import sys; sys.modules['mujoco'] = None\n"
        "from sb3_distill import load_teacher\n"
        "from sb3_distill.errors import IncompatibleTeacherError\n"
        "try:\n"
        f"    load_teacher({str(zoo_dir / 'sac/HalfCheetah-v3_1')!r})\n"
        "except IncompatibleTeacherError as error:\n"
        "    print(error)\n"
    )
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-W", "ignore", "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True, env=env)
    assert 'pip install "sb3-distill[mujoco]"' in result.stdout and "HalfCheetah-v5" in result.stdout


def test_zoo_ids_of_today_find_agents_recorded_on_v3(zoo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sb3_distill.teachers.envs import recorded_env_ids

    monkeypatch.chdir(tmp_path)
    for spec in ("sac/HalfCheetah-v5", "sac/HalfCheetah-v3"):
        teacher = load_teacher(spec, zoo_dirs=[zoo_dir])
        assert teacher.env_id == "HalfCheetah-v5"
        assert teacher.source_path == (zoo_dir / "sac/HalfCheetah-v3_1/HalfCheetah-v3.zip").resolve()
    # Only versions that cannot be made any more: HalfCheetah-v4 is its own env, CartPole-v0 another task.
    assert recorded_env_ids("HalfCheetah-v5") == ["HalfCheetah-v5", "HalfCheetah-v3", "HalfCheetah-v2"]
    assert recorded_env_ids("CartPole-v1") == ["CartPole-v1"]


def test_smoke_student_trains_in_the_teachers_env(zoo_dir: Path) -> None:
    """Smoke test: the student sees what the teacher saw (TimeFeatureWrapper, so its actions have the env's shape), the
    teacher normalizes its own inputs, and 300 steps of training run (learning is asserted in the benchmark)."""
    from sb3_distill import PolicyDistill

    teacher = load_teacher(zoo_dir / "ppo/Walker2d-v3_1")
    env = teacher.make_env(seed=0)
    student = PolicyDistill("MlpPolicy", env, teacher=teacher, learning_starts=100, buffer_size=500, batch_size=32, seed=0)
    student.learn(300)
    assert student.num_timesteps == 300
    obs = env.reset()
    assert student.predict(obs, deterministic=True)[0].shape == (1, 6)
