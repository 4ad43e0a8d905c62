"""PolicyDistill's losses against hand-computed values."""

import math

import pytest
import torch as th
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution

from sb3_distill.losses import gaussian_kl_loss, gaussian_nll_loss, nll_loss, policy_kl_loss


def test_policy_kl_softens_only_the_teacher():
    # Student uniform; teacher logits (2 ln 3, 0) at T = 2 give p_T = (3/4, 1/4).
    student = th.zeros(1, 2)
    teacher = th.tensor([[2 * math.log(3.0), 0.0]])
    forward = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    reverse = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert policy_kl_loss(student, teacher, temperature=2.0).item() == pytest.approx(forward, abs=1e-6)
    assert policy_kl_loss(student, teacher, 2.0, "student_teacher").item() == pytest.approx(reverse, abs=1e-6)
    # The student is not softened: the same student logits scaled by T are a different policy.
    assert policy_kl_loss(th.tensor([[math.log(3.0), 0.0]]), teacher, 2.0).item() == pytest.approx(0.0, abs=1e-6)


def test_policy_kl_is_a_batch_mean():
    student = th.zeros(2, 2)
    teacher = th.tensor([[2 * math.log(3.0), 0.0], [0.0, 0.0]])
    forward = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert policy_kl_loss(student, teacher, 2.0).item() == pytest.approx(forward / 2, abs=1e-6)


def test_policy_kl_with_q_values_and_small_temperature_is_greedy_cross_entropy():
    student = th.tensor([[0.3, -0.2, 1.0]])
    q_values = th.tensor([[10.0, 12.0, 9.0]])
    # softmax(Q / 0.01) is one-hot on action 1 up to e^-200; KL(one-hot || p_S) = -log p_S(1).
    expected = -th.log_softmax(student, dim=-1)[0, 1].item()
    assert policy_kl_loss(student, q_values, temperature=0.01).item() == pytest.approx(expected, abs=1e-5)
    assert nll_loss(student, q_values).item() == pytest.approx(expected, abs=1e-6)


def test_gaussian_kl_hand_computed():
    # One dimension: teacher N(0, 1), student N(1, 2); a second dimension where both are N(0.5, e^-1) adds 0.
    teacher_mean, teacher_log_std = th.tensor([[0.0, 0.5]]), th.tensor([[0.0, -1.0]])
    student_mean, student_log_std = th.tensor([[1.0, 0.5]]), th.tensor([[math.log(2.0), -1.0]])
    forward = math.log(2.0) + (1.0 + 1.0) / (2 * 4.0) - 0.5  # KL(T || S)
    reverse = -math.log(2.0) + (4.0 + 1.0) / 2.0 - 0.5  # KL(S || T)
    loss = gaussian_kl_loss(student_mean, student_log_std, teacher_mean, teacher_log_std)
    assert loss.item() == pytest.approx(forward, abs=1e-6)
    loss = gaussian_kl_loss(student_mean, student_log_std, teacher_mean, teacher_log_std, "student_teacher")
    assert loss.item() == pytest.approx(reverse, abs=1e-6)


def test_gaussian_kl_matches_torch_and_is_a_batch_mean():
    generator = th.Generator().manual_seed(0)
    means = [th.randn(5, 3, generator=generator) for _ in range(2)]
    log_stds = [0.5 * th.randn(5, 3, generator=generator) for _ in range(2)]
    teacher = th.distributions.Normal(means[0], log_stds[0].exp())
    student = th.distributions.Normal(means[1], log_stds[1].exp())
    expected = th.distributions.kl_divergence(teacher, student).sum(dim=1).mean()
    assert gaussian_kl_loss(means[1], log_stds[1], means[0], log_stds[0]).item() == pytest.approx(expected.item(), rel=1e-5)


def test_pre_tanh_kl_is_the_kl_of_the_squashed_policies():
    """The documented choice for SAC/TQC teachers: KL is invariant under the shared tanh, checked by Monte Carlo."""
    th.manual_seed(0)
    teacher_mean, teacher_log_std = th.tensor([[0.8, -1.5]]), th.tensor([[-0.5, -1.0]])
    student_mean, student_log_std = th.tensor([[0.2, -1.0]]), th.tensor([[-0.3, -0.7]])
    teacher = SquashedDiagGaussianDistribution(2).proba_distribution(teacher_mean.expand(200_000, 2), teacher_log_std)
    student = SquashedDiagGaussianDistribution(2).proba_distribution(student_mean.expand(200_000, 2), student_log_std)
    actions = teacher.sample()
    pre_tanh = teacher.gaussian_actions
    monte_carlo = (teacher.log_prob(actions, pre_tanh) - student.log_prob(actions, pre_tanh)).mean()
    closed_form = gaussian_kl_loss(student_mean, student_log_std, teacher_mean, teacher_log_std)
    assert monte_carlo.item() == pytest.approx(closed_form.item(), abs=0.02)


def test_gaussian_nll_hand_computed():
    half_log_two_pi = 0.5 * math.log(2 * math.pi)
    loss = gaussian_nll_loss(th.zeros(1, 1), th.zeros(1, 1), th.ones(1, 1))
    assert loss.item() == pytest.approx(0.5 + half_log_two_pi, abs=1e-6)
    # Two dimensions (summed), two samples (averaged): the second sample has std 2 and error 2.
    mean = th.zeros(2, 2)
    log_std = th.tensor([[0.0, 0.0], [math.log(2.0), math.log(2.0)]])
    target = th.tensor([[1.0, 0.0], [2.0, 2.0]])
    first = (0.5 + half_log_two_pi) + half_log_two_pi
    second = 2 * (0.5 + math.log(2.0) + half_log_two_pi)
    assert gaussian_nll_loss(mean, log_std, target).item() == pytest.approx((first + second) / 2, abs=1e-6)


def test_losses_pull_the_student_towards_the_teacher():
    student_mean = th.zeros(4, 2, requires_grad=True)
    teacher_mean = th.ones(4, 2)
    log_std = th.zeros(4, 2)
    gaussian_kl_loss(student_mean, log_std, teacher_mean, log_std).backward()
    assert student_mean.grad is not None and (student_mean.grad < 0).all()  # gradient descent moves the mean up
    logits = th.zeros(3, 2, requires_grad=True)
    policy_kl_loss(logits, th.tensor([[5.0, 0.0]] * 3)).backward()
    assert logits.grad is not None and (logits.grad[:, 0] < 0).all() and (logits.grad[:, 1] > 0).all()
