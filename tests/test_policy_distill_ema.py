"""PolicyDistill's ``ema_tau``: an exponential moving average of the student's weights acts, is saved and exported."""

import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_distill import PolicyDistill

TINY = dict(learning_starts=20, buffer_size=1_000, batch_size=32, learning_rate=3e-3, gradient_steps=2, seed=0)
NET = dict(net_arch=[16])


def _weights(policy) -> list[th.Tensor]:
    return [p.detach().clone() for p in policy.parameters()]


def _student(**kwargs) -> PolicyDistill:
    return PolicyDistill(
        "MlpPolicy", "Pendulum-v1", teacher="sac/Pendulum-v1", policy_kwargs=NET, device="cpu", **TINY, **kwargs
    )


def test_the_average_is_the_exponential_moving_average_of_every_gradient_step():
    tau = 0.2
    model = _student(ema_tau=tau)
    expected = _weights(model.policy)  # θ̄_0 = θ_0
    optimizer = model.policy.optimizer
    step = optimizer.step

    def step_and_record(*args, **kwargs):
        result = step(*args, **kwargs)
        # inside train(), `policy` holds θ: the average moves towards it after every gradient step
        for average, weight in zip(expected, model.policy.parameters(), strict=True):
            average.mul_(1 - tau).add_(weight.detach(), alpha=tau)
        return result

    optimizer.step = step_and_record  # type: ignore[method-assign]
    model.learn(40)
    assert model._n_updates == 2 * (40 - 20)
    # Outside train() the average acts; θ waits in unaveraged_policy (and differs from it).
    for acting, average in zip(model.policy.parameters(), expected, strict=True):
        assert th.allclose(acting, average, atol=1e-6)
    assert not all(
        th.equal(a, b) for a, b in zip(model.policy.parameters(), model.unaveraged_policy.parameters(), strict=True)
    )


def test_tau_one_trains_exactly_as_without_an_average():
    plain, averaged = _student().learn(60), _student(ema_tau=1.0).learn(60)
    assert plain.unaveraged_policy is None
    for a, b in zip(plain.policy.parameters(), averaged.policy.parameters(), strict=True):
        assert th.equal(a, b)


def test_save_and_load_keep_both_weights_and_the_average_acts(tmp_path: Path):
    model = _student(ema_tau=0.1).learn(60)
    path = tmp_path / "student.zip"
    model.save(path)
    assert b"_ema_parameters" not in zipfile.ZipFile(path).read("data")  # the listed parameters are not saved twice
    loaded = PolicyDistill.load(path, device="cpu")
    assert loaded.ema_tau == 0.1
    for saved, restored in ((model.policy, loaded.policy), (model.unaveraged_policy, loaded.unaveraged_policy)):
        assert all(th.equal(a, b) for a, b in zip(saved.parameters(), restored.parameters(), strict=True))
    states = np.random.default_rng(0).uniform(-1, 1, size=(16, 3)).astype(np.float32)
    assert np.array_equal(model.predict(states, deterministic=True)[0], loaded.predict(states, deterministic=True)[0])
    # to_ppo() (and export) take `policy`: the averaged weights.
    ppo = model.to_ppo(learning_rate=1e-4)
    assert all(th.equal(a, b) for a, b in zip(model.policy.parameters(), ppo.policy.parameters(), strict=True))
    # Training resumes from θ, not from the average.
    resumed = PolicyDistill.load(path, env=gym.make("Pendulum-v1"), teacher="sac/Pendulum-v1", device="cpu")
    resumed.learn(30, reset_num_timesteps=False)
    assert resumed._n_updates == model._n_updates + 2 * 30


@pytest.mark.parametrize("tau", [0.0, -0.1, 1.5, float("nan")])
def test_ema_tau_out_of_range_is_refused_before_anything_is_built(tau):
    with pytest.raises(ValueError, match=r"ema_tau must be in \(0, 1\]"):
        PolicyDistill("MlpPolicy", "Pendulum-v1", teacher="no/such-teacher", ema_tau=tau)
