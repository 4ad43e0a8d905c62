"""DistillDQN's ``ema_tau``: an exponential moving average of the Q-network's weights predicts, is saved and exported."""

import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_distill import DistillDQN

TINY = dict(learning_starts=20, buffer_size=1_000, batch_size=16, gradient_steps=2, target_update_interval=10, seed=0)
# (G_random, G_teacher) given: "outgrow"'s α rule would otherwise play 20 episodes to measure them
REFERENCE = dict(reference_returns=(22.0, 500.0))
NET = dict(net_arch=[16])


def _weights(module) -> list[th.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _student(**kwargs) -> DistillDQN:
    # "outgrow": a TD term, so that the target network matters too
    return DistillDQN(
        "MlpPolicy",
        "CartPole-v1",
        teacher="dqn/CartPole-v1",
        recipe="outgrow",
        policy_kwargs=NET,
        device="cpu",
        **TINY,
        **REFERENCE,
        **kwargs,
    )


def test_the_average_of_every_gradient_step_predicts_theta_acts_in_the_env_and_the_target_network_copies_the_average():
    tau = 0.2
    model = _student(ema_tau=tau)
    expected = _weights(model.q_net)  # θ̄_0 = θ_0
    optimizer = model.policy.optimizer
    step = optimizer.step

    trained: list[list[th.Tensor]] = []

    def step_and_record(*args, **kwargs):
        result = step(*args, **kwargs)
        # inside train(), q_net holds θ: the average moves towards it after every gradient step
        for average, weight in zip(expected, model.q_net.parameters(), strict=True):
            average.mul_(1 - tau).add_(weight.detach(), alpha=tau)
        trained[:] = [_weights(model.q_net)]
        return result

    predict = model.predict
    acted_with_theta = []

    def predict_and_check(*args, **kwargs):
        # The student's env steps are chosen by θ (the latest trained weights), not by the average
        if trained and model.num_timesteps < 40:
            acted_with_theta.append(all(th.equal(a, b) for a, b in zip(model.q_net.parameters(), trained[0], strict=True)))
        return predict(*args, **kwargs)

    model.predict = predict_and_check  # type: ignore[method-assign]

    optimizer.step = step_and_record  # type: ignore[method-assign]
    train = model.train
    targets_copied_the_average = []

    def train_and_check(*args, **kwargs):
        # Between two train() calls q_net holds θ̄; every 10 steps the target network has just copied it
        if model.num_timesteps % 10 == 0:
            targets_copied_the_average.append(
                all(th.equal(a, b) for a, b in zip(model.q_net_target.parameters(), model.q_net.parameters(), strict=True))
            )
        return train(*args, **kwargs)

    model.train = train_and_check  # type: ignore[method-assign]
    model.learn(40)
    assert model._n_updates == 2 * (40 - 20)
    # Outside train() the average acts; θ waits in unaveraged_q_net (and differs from it).
    for acting, average in zip(model.q_net.parameters(), expected, strict=True):
        assert th.allclose(acting, average, atol=1e-6)
    assert not all(th.equal(a, b) for a, b in zip(model.q_net.parameters(), model.unaveraged_q_net.parameters(), strict=True))
    assert len(acted_with_theta) == 40 - 21 and all(acted_with_theta)
    assert targets_copied_the_average == [True, True]  # steps 30 and 40 (none at 20: learning starts after it)


def test_tau_one_trains_exactly_as_without_an_average():
    plain, averaged = _student().learn(60), _student(ema_tau=1.0).learn(60)
    assert plain.unaveraged_q_net is None
    for a, b in zip(plain.policy.parameters(), averaged.policy.parameters(), strict=True):
        assert th.equal(a, b)


def test_save_and_load_keep_both_weights_and_the_average_predicts(tmp_path: Path):
    model = _student(ema_tau=0.1).learn(60)
    path = tmp_path / "student.zip"
    model.save(path)
    assert b"_ema_parameters" not in zipfile.ZipFile(path).read("data")  # the listed parameters are not saved twice
    loaded = DistillDQN.load(path, device="cpu")
    assert loaded.ema_tau == 0.1
    for saved, restored in ((model.q_net, loaded.q_net), (model.unaveraged_q_net, loaded.unaveraged_q_net)):
        assert all(th.equal(a, b) for a, b in zip(saved.parameters(), restored.parameters(), strict=True))
    states = np.random.default_rng(0).uniform(-1, 1, size=(16, 4)).astype(np.float32)
    assert np.array_equal(model.predict(states, deterministic=True)[0], loaded.predict(states, deterministic=True)[0])
    # Training resumes from θ, not from the average.
    resumed = DistillDQN.load(path, env=gym.make("CartPole-v1"), teacher="dqn/CartPole-v1", device="cpu")
    resumed.learn(30, reset_num_timesteps=False)
    assert resumed._n_updates == model._n_updates + 2 * 30


@pytest.mark.parametrize("tau", [0.0, -0.1, 1.5, float("nan")])
def test_ema_tau_out_of_range_is_refused_before_anything_is_built(tau):
    with pytest.raises(ValueError, match=r"ema_tau must be in \(0, 1\]"):
        DistillDQN("MlpPolicy", "CartPole-v1", teacher="no/such-teacher", ema_tau=tau)
