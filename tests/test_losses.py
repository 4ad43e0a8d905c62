"""Each distillation loss against values computed by hand."""

import math

import pytest
import torch as th

from sb3_distill.losses import agreement, distillation_loss, kl_loss, mse_loss, nll_loss, td_loss

STUDENT = th.tensor([[1.0, 2.0], [0.0, 0.0]])
TEACHER = th.tensor([[2.0, 0.0], [1.0, 3.0]])


def softmax(row: list[float], temperature: float = 1.0) -> list[float]:
    exps = [math.exp(x / temperature) for x in row]
    return [e / sum(exps) for e in exps]


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


@pytest.mark.parametrize("temperature", [1.0, 0.5, 20.0])
def test_forward_and_reverse_kl(temperature: float) -> None:
    p_s = [softmax(row, temperature) for row in STUDENT.tolist()]
    p_t = [softmax(row, temperature) for row in TEACHER.tolist()]
    forward = (kl(p_t[0], p_s[0]) + kl(p_t[1], p_s[1])) / 2
    reverse = (kl(p_s[0], p_t[0]) + kl(p_s[1], p_t[1])) / 2
    assert kl_loss(STUDENT, TEACHER, temperature, "teacher_student").item() == pytest.approx(forward, rel=1e-5)
    assert kl_loss(STUDENT, TEACHER, temperature, "student_teacher").item() == pytest.approx(reverse, rel=1e-5)
    assert forward != pytest.approx(reverse)


def test_kl_of_identical_policies_is_zero() -> None:
    assert kl_loss(TEACHER, TEACHER + 5.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_mse_is_mean_over_actions_then_batch() -> None:
    # (1-2)^2 + (2-0)^2 = 5 ; (0-1)^2 + (0-3)^2 = 10 ; mean of per-state means: (2.5 + 5) / 2
    assert mse_loss(STUDENT, TEACHER).item() == pytest.approx(3.75)


def test_nll_of_teacher_greedy_action() -> None:
    # teacher argmax: action 0, then action 1
    expected = (-math.log(softmax([1.0, 2.0])[0]) - math.log(softmax([0.0, 0.0])[1])) / 2
    assert nll_loss(STUDENT, TEACHER).item() == pytest.approx(expected, rel=1e-5)
    expected_t2 = (-math.log(softmax([1.0, 2.0], 2.0)[0]) - math.log(0.5)) / 2
    assert nll_loss(STUDENT, TEACHER, temperature=2.0).item() == pytest.approx(expected_t2, rel=1e-5)


def test_temperature_scaling_multiplies_by_t_squared() -> None:
    plain = distillation_loss("kl", STUDENT, TEACHER, temperature=4.0, direction="student_teacher")
    scaled = distillation_loss("kl", STUDENT, TEACHER, temperature=4.0, direction="student_teacher", temperature_scaling=True)
    assert scaled.item() == pytest.approx(16.0 * plain.item(), rel=1e-6)


def test_seed_document_loss_by_hand() -> None:
    """The seed's D term: T^2 * KL(q_S || q_T) with q = softmax(Q / 20)."""
    temperature = 20.0
    p_s = [softmax(row, temperature) for row in STUDENT.tolist()]
    p_t = [softmax(row, temperature) for row in TEACHER.tolist()]
    expected = temperature**2 * (kl(p_s[0], p_t[0]) + kl(p_s[1], p_t[1])) / 2
    got = distillation_loss("kl", STUDENT, TEACHER, temperature, "student_teacher", temperature_scaling=True)
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_td_losses() -> None:
    current = th.tensor([[0.0], [3.0]])
    target = th.tensor([[0.5], [0.0]])
    # huber: 0.5 * 0.5^2 = 0.125 ; |3| - 0.5 = 2.5
    assert td_loss(current, target, "huber").item() == pytest.approx((0.125 + 2.5) / 2)
    assert td_loss(current, target, "mse").item() == pytest.approx((0.25 + 9.0) / 2)


def test_agreement() -> None:
    # argmax: student 1, 0, 1 ; teacher 0, 1, 1
    student = th.tensor([[1.0, 2.0], [0.0, 0.0], [0.0, 1.0]])
    teacher = th.tensor([[2.0, 0.0], [1.0, 3.0], [1.0, 3.0]])
    assert agreement(student, teacher).item() == pytest.approx(1 / 3)


def test_unknown_names() -> None:
    with pytest.raises(ValueError, match="Unknown distillation loss"):
        distillation_loss("l1", STUDENT, TEACHER)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown TD loss"):
        td_loss(STUDENT, TEACHER, "l1")  # type: ignore[arg-type]
