"""Non-finite values stop the run: NaN or inf in observations, rewards, teacher outputs or the loss, for every algorithm."""

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_distill import DistillDQN, PolicyDistill, load_teacher
from sb3_distill.errors import NonFiniteError

TINY = dict(learning_starts=100, buffer_size=500, batch_size=32, policy_kwargs=dict(net_arch=[16]), seed=0)
ALGORITHMS = {"DistillDQN": (DistillDQN, {}), "PolicyDistill": (PolicyDistill, {"distill_value_coef": 0.0})}
#: The env step at which the bad value appears.
BAD_STEP = 150


class BadValueAt(gym.Wrapper):
    """Return ``value`` as the observation's first entry (``where="observation"``) or as the reward at env step ``at``."""

    def __init__(self, env: gym.Env, where: str, value: float, at: int = BAD_STEP) -> None:
        super().__init__(env)
        self.where, self.value, self.at, self.steps = where, value, at, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.steps == self.at:
            if self.where == "observation":
                obs = obs.copy()
                obs[0] = self.value
            else:
                reward = self.value
        return obs, reward, terminated, truncated, info


def _make(name: str, env, teacher="dqn/CartPole-v1", **kwargs):
    algorithm, defaults = ALGORITHMS[name]
    return algorithm("MlpPolicy", env, teacher=teacher, **{**TINY, **defaults, **kwargs})


def _assert_weights_finite(model) -> None:
    for name, parameter in model.policy.named_parameters():
        assert th.isfinite(parameter).all(), f"{name} was overwritten with a non-finite value"


def _error_step(error: pytest.ExceptionInfo) -> int:
    found = re.search(r"env step (\d+)", str(error.value))
    assert found, f"the message names no env step: {error.value}"
    return int(found.group(1))


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["observation", "reward"])
def test_bad_env_values_stop_the_run(name: str, where: str, value: float) -> None:
    model = _make(name, BadValueAt(gym.make("CartPole-v1"), where, value))
    with pytest.raises(NonFiniteError, match=rf"{where}.*VecCheckNan") as error:
        model.learn(600)
    # Detected when the value is first used: a policy acting on it, or a batch that holds it.
    assert BAD_STEP <= _error_step(error) <= 600
    assert model.num_timesteps < 600
    _assert_weights_finite(model)


def _poisoned_teacher():
    """The bundled CartPole DQN whose last layer gives NaN: a teacher that breaks on the student's states."""
    teacher = load_teacher("dqn/CartPole-v1")
    with th.no_grad():
        for module in teacher.policy.modules():  # the output layers (of q_net and q_net_target)
            if isinstance(module, th.nn.Linear) and module.out_features == teacher.action_space.n:
                module.bias.fill_(float("nan"))
    assert th.isnan(teacher.action_logits(np.zeros((1, 4), dtype=np.float32))).all()
    return teacher


@pytest.mark.parametrize("name", ALGORITHMS)
def test_non_finite_teacher_outputs_stop_the_run(name: str) -> None:
    model = _make(name, "CartPole-v1", teacher=_poisoned_teacher())
    with pytest.raises(NonFiniteError, match=r"teacher outputs.*teacher\.action_logits") as error:
        model.learn(300)
    # at the first gradient step (DQN trains every 4 env steps, PolicyDistill every step)
    assert TINY["learning_starts"] < _error_step(error) <= TINY["learning_starts"] + 4
    _assert_weights_finite(model)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("DistillDQN", {}),
        # PolicyDistill's KL is bounded; its value term (MSE) is what a diverging student blows up.
        ("PolicyDistill", {"teacher": str(Path(__file__).parent / "data/zoo/ppo/CartPole-v1_1"), "distill_value_coef": 0.5}),
    ],
)
def test_diverging_loss_stops_the_run(name: str, kwargs: dict) -> None:
    model = _make(name, "CartPole-v1", learning_rate=1e25, **kwargs)
    with pytest.raises(NonFiniteError, match=r"non-finite loss with finite inputs.*learning_rate"):
        model.learn(600)
    _assert_weights_finite(model)


def test_offline_dataset_with_nan_names_the_observations(tmp_path: Path) -> None:
    from sb3_distill.common.datasets import collect_teacher_dataset

    dataset = collect_teacher_dataset("dqn/CartPole-v1", "CartPole-v1", 200, seed=0)
    dataset.observations[:, 0, 1] = np.nan
    model = PolicyDistill("MlpPolicy", None, teacher="dqn/CartPole-v1", dataset=dataset, distill_value_coef=0.0, batch_size=32)
    with pytest.raises(NonFiniteError, match="observations"):
        model.learn_offline(10)
    _assert_weights_finite(model)
