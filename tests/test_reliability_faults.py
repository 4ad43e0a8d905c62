"""Faults during training: a teacher file replaced or deleted on disk, a SubprocVecEnv worker that dies."""

import functools
import os
import shutil
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

from sb3_distill import DistillDQN, PolicyDistill
from sb3_distill.common.workers import WorkerDiedError
from sb3_distill.teachers import BUNDLED_DIR

TINY = dict(learning_starts=100, buffer_size=500, batch_size=32, policy_kwargs=dict(net_arch=[16]), seed=0)
ALGORITHMS = {"DistillDQN": (DistillDQN, {}), "PolicyDistill": (PolicyDistill, {"distill_value_coef": 0.0})}


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("fault", ["deleted", "replaced"])
def test_teacher_file_changed_on_disk_during_training(name: str, fault: str, tmp_path: Path) -> None:
    run = tmp_path / "teacher"
    shutil.copytree(BUNDLED_DIR / "dqn" / "CartPole-v1_1", run)
    algorithm, kwargs = ALGORITHMS[name]
    model = algorithm("MlpPolicy", "CartPole-v1", teacher=str(run), **TINY, **kwargs)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32) * 0.5
    before = model.teacher.action_logits(obs).clone()
    model.learn(200)
    zip_file = run / "CartPole-v1.zip"
    if fault == "deleted":
        shutil.rmtree(run)
    else:  # another model (the zoo's ppo) written over it, as a retraining job would
        zip_file.write_bytes((Path(__file__).parent / "data/zoo/ppo/CartPole-v1_1/CartPole-v1.zip").read_bytes())
    model.learn(200, reset_num_timesteps=False)
    assert model.num_timesteps == 400
    assert th.equal(model.teacher.action_logits(obs), before), "the teacher changed with its file"


class DieAtStep(gym.Wrapper):
    """The env of one worker kills its process (as a crash in native code or the OOM killer would) at step ``at``."""

    def __init__(self, env: gym.Env, die: bool, at: int) -> None:
        super().__init__(env)
        self.die, self.at, self.steps = die, at, 0

    def step(self, action):
        self.steps += 1
        if self.die and self.steps == self.at:
            os._exit(3)
        return self.env.step(action)


def make_env(rank: int, dying_rank: int = 1, at: int = 120) -> gym.Env:
    return DieAtStep(gym.make("CartPole-v1"), die=rank == dying_rank, at=at)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
def test_dead_subproc_worker_is_named_and_nothing_hangs(name: str, start_method: str) -> None:
    """SB3 alone raises a bare EOFError (forkserver) or blocks forever (fork: the pipe has other holders)."""
    env = VecNormalize(SubprocVecEnv([functools.partial(make_env, rank) for rank in range(3)], start_method=start_method))
    algorithm, kwargs = ALGORITHMS[name]
    model = algorithm("MlpPolicy", env, teacher="dqn/CartPole-v1", **TINY, **kwargs)
    started = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"worker 1 \(pid \d+, exit code 3\) of the SubprocVecEnv.*DummyVecEnv"):
        model.learn(2_000)
    assert time.monotonic() - started < 60
    assert model.num_timesteps < 2_000
    subproc = env.venv
    assert subproc.closed and not any(process.is_alive() for process in subproc.processes)
    env.close()  # a no-op now, and no hang


def test_healthy_subproc_env_is_untouched() -> None:
    env = SubprocVecEnv([functools.partial(make_env, rank, dying_rank=-1) for rank in range(2)], start_method="fork")
    model = PolicyDistill("MlpPolicy", env, teacher="dqn/CartPole-v1", distill_value_coef=0.0, **TINY)
    model.learn(300)
    assert model.num_timesteps == 300 and "step_wait" not in vars(env)
    env.close()
