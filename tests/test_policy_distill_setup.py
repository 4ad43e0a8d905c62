"""PolicyDistill's offline set-up (``setup_learn_without_env``) against SB3's own ``_setup_learn``."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_distill import PolicyDistill


class _Counting(gym.Wrapper):
    resets = 0

    def reset(self, **kwargs):
        _Counting.resets += 1
        return super().reset(**kwargs)


class _Nothing(BaseCallback):
    def _on_step(self) -> bool:
        return True


def _state(model: PolicyDistill) -> tuple:
    buffer = model.ep_info_buffer
    return (
        model.num_timesteps,
        model._episode_num,
        model._total_timesteps,
        model._num_timesteps_at_start,
        buffer.maxlen,
        len(buffer),
    )


@pytest.mark.parametrize("reset_num_timesteps", [True, False])
def test_setup_learn_without_env_is_sb3s_setup_without_the_reset(reset_num_timesteps: bool) -> None:
    # Two identical runs: counters, episode infos and a last observation to keep or reset
    offline, reference = (
        PolicyDistill(
            "MlpPolicy", _Counting(gym.make("CartPole-v1")), teacher="dqn/CartPole-v1", learning_starts=10, seed=0
        ).learn(40)
        for _ in range(2)
    )
    assert _state(offline) == _state(reference) and offline._episode_num > 0
    last_obs = offline._last_obs
    resets = _Counting.resets
    callback = offline.setup_learn_without_env(100, _Nothing(), reset_num_timesteps, "offline")
    assert _Counting.resets == resets and offline._last_obs is last_obs  # the env was neither reset nor replaced
    _, expected = OffPolicyAlgorithm._setup_learn(reference, 100, _Nothing(), reset_num_timesteps, "offline")
    assert _state(offline) == _state(reference)
    assert [type(f) for f in offline.logger.output_formats] == [type(f) for f in reference.logger.output_formats]
    assert type(callback) is type(expected) is _Nothing
    assert callback.training_env is offline.env and np.isfinite(offline.start_time)
