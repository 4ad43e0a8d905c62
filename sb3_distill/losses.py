"""
Distillation losses as pure functions of tensors: batch in, scalar out (per-sample loss, then mean over the batch).

Names follow the design: ``p_X = softmax(logits_X / T)``; "teacher_student" is the forward KL(p_T || p_S)
(Rusu et al. 2016, QDagger), "student_teacher" the reverse KL(p_S || p_T) (the seed document's formula).
"""

import math
from typing import Literal

import torch as th
from torch.nn import functional as F

KLDirection = Literal["teacher_student", "student_teacher"]
DistillLossName = Literal["kl", "mse", "nll"]
TDLossName = Literal["huber", "mse"]

KL_DIRECTIONS: tuple[str, ...] = ("teacher_student", "student_teacher")
DISTILL_LOSSES: tuple[str, ...] = ("kl", "mse", "nll")
TD_LOSSES: tuple[str, ...] = ("huber", "mse")


def kl_loss(
    student_logits: th.Tensor,
    teacher_logits: th.Tensor,
    temperature: float = 1.0,
    direction: KLDirection = "teacher_student",
    student_temperature: float | None = None,
) -> th.Tensor:
    """
    KL divergence between the softened categorical policies of teacher and student.

    :param student_logits: shape (batch, n_actions), e.g. the student's Q-values
    :param teacher_logits: shape (batch, n_actions), the teacher's Q-values or action logits
    :param temperature: T in softmax(logits / T)
    :param direction: ``"teacher_student"``: KL(p_T || p_S); ``"student_teacher"``: KL(p_S || p_T)
    :param student_temperature: the student's own T, if it differs (default: ``temperature``)
    :return: mean over the batch of the per-state KL
    """
    student_temperature = temperature if student_temperature is None else student_temperature
    log_p_student = F.log_softmax(student_logits / student_temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    if direction == "teacher_student":
        per_state = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    else:
        per_state = (log_p_student.exp() * (log_p_student - log_p_teacher)).sum(dim=-1)
    return per_state.mean()


def mse_loss(student_values: th.Tensor, teacher_values: th.Tensor) -> th.Tensor:
    """
    Regression of the student's outputs on the teacher's: mean_a (Q_S - Q_T)^2, then mean over the batch.

    :param student_values: shape (batch, n) (Q-values, actions or values)
    :param teacher_values: same shape
    :return: scalar loss
    """
    return F.mse_loss(student_values, teacher_values)


def nll_loss(student_logits: th.Tensor, teacher_logits: th.Tensor, temperature: float = 1.0) -> th.Tensor:
    """
    Cross-entropy of the teacher's greedy action under the student's softmax(logits / T).

    :param student_logits: shape (batch, n_actions)
    :param teacher_logits: shape (batch, n_actions); only its argmax is used
    :param temperature: T of the student's softmax
    :return: mean over the batch of -log p_S(argmax_a teacher)
    """
    return F.cross_entropy(student_logits / temperature, teacher_logits.argmax(dim=-1))


def distillation_loss(
    name: DistillLossName,
    student_logits: th.Tensor,
    teacher_logits: th.Tensor,
    temperature: float = 1.0,
    direction: KLDirection = "teacher_student",
    temperature_scaling: bool = False,
) -> th.Tensor:
    """
    The distillation term D of DistillDQN, between Q-values (or logits) softened on both sides. PolicyDistill and
    DistillPPO compare a policy with its teacher through :func:`policy_kl_loss` and the Gaussian losses below
    (:mod:`sb3_distill.common.policy_terms`).

    :param name: ``"kl"``, ``"mse"`` or ``"nll"``
    :param student_logits: shape (batch, n_actions)
    :param teacher_logits: shape (batch, n_actions)
    :param temperature: softmax temperature T (``kl`` and ``nll``)
    :param direction: KL direction (``kl`` only)
    :param temperature_scaling: multiply by T^2 (Hinton et al. 2015), which keeps gradient sizes comparable across T
    :return: scalar loss
    """
    if name == "kl":
        loss = kl_loss(student_logits, teacher_logits, temperature, direction)
    elif name == "mse":
        loss = mse_loss(student_logits, teacher_logits)
    elif name == "nll":
        loss = nll_loss(student_logits, teacher_logits, temperature)
    else:
        raise ValueError(f"Unknown distillation loss {name!r}: use one of {DISTILL_LOSSES}.")
    if temperature_scaling:
        loss = loss * temperature**2
    return loss


def td_loss(current_q_values: th.Tensor, target_q_values: th.Tensor, name: TDLossName = "huber") -> th.Tensor:
    """
    The temporal-difference regression term.

    :param current_q_values: Q(s, a) of the student, shape (batch, 1)
    :param target_q_values: TD targets y, same shape
    :param name: ``"huber"`` (SB3's DQN) or ``"mse"`` (the seed document)
    :return: scalar loss (mean over the batch)
    """
    if name == "huber":
        return F.smooth_l1_loss(current_q_values, target_q_values)
    if name == "mse":
        return F.mse_loss(current_q_values, target_q_values)
    raise ValueError(f"Unknown TD loss {name!r}: use one of {TD_LOSSES}.")


def agreement(student_logits: th.Tensor, teacher_logits: th.Tensor) -> th.Tensor:
    """
    :param student_logits: shape (batch, n_actions)
    :param teacher_logits: shape (batch, n_actions)
    :return: share of states where both argmax agree (a float tensor in [0, 1])
    """
    return (student_logits.argmax(dim=-1) == teacher_logits.argmax(dim=-1)).float().mean()


# ---------------------------------------------------------------------------------------------- PolicyDistill
# The student of PolicyDistill and DistillPPO is a policy (it acts with softmax(z_S), or its Gaussian), so only the
# teacher is softened. Their distill_loss names are DISTILL_LOSSES, as DistillDQN's.


def policy_kl_loss(
    student_logits: th.Tensor,
    teacher_logits: th.Tensor,
    temperature: float = 1.0,
    direction: KLDirection = "teacher_student",
) -> th.Tensor:
    """
    KL divergence between a softened categorical teacher p_T = softmax(z_T / T) and the student's own policy
    p_S = softmax(z_S) (Rusu et al. 2016, "Policy Distillation": the student is not softened, so after training it
    acts with the teacher's softened policy itself).

    :param student_logits: shape (batch, n_actions), the student's action logits
    :param teacher_logits: shape (batch, n_actions), the teacher's logits (or Q-values, for softmax(Q / T))
    :param temperature: T of the teacher's softmax
    :param direction: ``"teacher_student"``: KL(p_T || p_S); ``"student_teacher"``: KL(p_S || p_T)
    :return: mean over the batch of the per-state KL
    """
    return kl_loss(student_logits, teacher_logits, temperature, direction, student_temperature=1.0)


def gaussian_kl_loss(
    student_mean: th.Tensor,
    student_log_std: th.Tensor,
    teacher_mean: th.Tensor,
    teacher_log_std: th.Tensor,
    direction: KLDirection = "teacher_student",
) -> th.Tensor:
    """
    KL divergence between two diagonal Gaussians, summed over action dimensions, then mean over the batch.

    KL(N(m_1, s_1) || N(m_2, s_2)) = log(s_2 / s_1) + (s_1² + (m_1 - m_2)²) / (2 s_2²) - 1/2 per dimension.
    For tanh-squashed policies (SAC, TQC) pass the pre-tanh parameters: both sides are pushed through the same
    bijection, and the KL divergence is invariant under it, so this is exactly the KL of the squashed policies.

    :param student_mean: shape (batch, action_dim)
    :param student_log_std: shape (batch, action_dim) (or broadcastable to it)
    :param teacher_mean: shape (batch, action_dim)
    :param teacher_log_std: shape (batch, action_dim) (or broadcastable to it)
    :param direction: ``"teacher_student"``: KL(π_T || π_S); ``"student_teacher"``: KL(π_S || π_T)
    :return: scalar loss
    """
    if direction == "teacher_student":
        mean_1, log_std_1, mean_2, log_std_2 = teacher_mean, teacher_log_std, student_mean, student_log_std
    else:
        mean_1, log_std_1, mean_2, log_std_2 = student_mean, student_log_std, teacher_mean, teacher_log_std
    variance_ratio = th.exp(2 * (log_std_1 - log_std_2))
    mean_term = (mean_1 - mean_2) ** 2 * th.exp(-2 * log_std_2)
    per_dim = log_std_2 - log_std_1 + 0.5 * (variance_ratio + mean_term) - 0.5
    return per_dim.sum(dim=-1).mean()


def gaussian_nll_loss(student_mean: th.Tensor, student_log_std: th.Tensor, target_actions: th.Tensor) -> th.Tensor:
    """
    Negative log-likelihood of the teacher's (greedy) actions under the student's diagonal Gaussian, summed over
    action dimensions, then mean over the batch (behaviour cloning of a continuous teacher).

    For a tanh-squashed student pass the pre-tanh target atanh(a): the log-determinant of tanh at a fixed target
    does not depend on the student, so the gradients are those of the squashed likelihood.

    :param student_mean: shape (batch, action_dim)
    :param student_log_std: shape (batch, action_dim) (or broadcastable to it)
    :param target_actions: shape (batch, action_dim)
    :return: scalar loss
    """
    squared_error = ((target_actions - student_mean) * th.exp(-student_log_std)) ** 2
    per_dim = 0.5 * squared_error + student_log_std + 0.5 * math.log(2 * math.pi)
    return per_dim.sum(dim=-1).mean()
