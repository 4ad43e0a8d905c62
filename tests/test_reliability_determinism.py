"""Determinism: two runs with the same seed on CPU give identical student weights."""

import pytest
import torch as th
from stable_baselines3.common.utils import LinearSchedule

from sb3_distill import DistillDQN, PolicyDistill

TINY = dict(learning_starts=100, buffer_size=500, batch_size=32, policy_kwargs=dict(net_arch=[16]), device="cpu")

RUNS = {
    "DistillDQN, teacher-output cache": (DistillDQN, {"cache_teacher_outputs": True}),
    "DistillDQN, no cache": (DistillDQN, {"cache_teacher_outputs": False}),
    "DistillDQN, qdagger": (DistillDQN, {"recipe": "qdagger", "teacher_rollout_steps": 150, "pretrain_gradient_steps": 20}),
    # the student samples its policy (torch RNG) and a teacher acts with a decaying share (numpy RNG)
    "PolicyDistill, teacher share schedule": (PolicyDistill, {"data_policy": LinearSchedule(1.0, 0.0, 1.0)}),
}


def _train(name: str, seed: int) -> dict[str, th.Tensor]:
    algorithm, kwargs = RUNS[name]
    model = algorithm("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", seed=seed, **TINY, **kwargs)
    model.learn(400)
    return {key: value.clone() for key, value in model.policy.state_dict().items()}


@pytest.mark.parametrize("name", RUNS)
def test_same_seed_same_weights(name: str) -> None:
    first, second = _train(name, seed=3), _train(name, seed=3)
    assert first.keys() == second.keys()
    for key in first:
        assert th.equal(first[key], second[key]), f"{key} differs between two runs with the same seed"
    other = _train(name, seed=4)
    assert any(not th.equal(first[key], other[key]) for key in first), "the seed changes nothing: the test is void"
