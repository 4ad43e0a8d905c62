"""
Stop training at the first non-finite value, with an error that says which value, at which step, and what to do.

The check is on the loss alone (one scalar per gradient step, before ``optimizer.step()`` touches the weights): a
NaN or inf anywhere upstream (observation, reward, teacher output) makes the loss non-finite. Only then are the
batch's tensors inspected, so the diagnosis costs nothing while training is healthy.
"""

from typing import Any

import numpy as np
import torch as th

from sb3_distill.errors import NonFiniteError

_HINTS = {
    "observations": "an env returned NaN/inf observations: wrap it in SB3's VecCheckNan(env, raise_exception=True) "
    "to find the step and the env",
    "next_observations": "an env returned NaN/inf observations: wrap it in SB3's VecCheckNan(env, raise_exception=True)",
    "rewards": "an env returned a NaN/inf reward: wrap it in SB3's VecCheckNan(env, raise_exception=True)",
    "teacher outputs": "the teacher gives NaN/inf for these observations: check the teacher on them "
    "(teacher.action_logits(obs)) and that the student's env is the teacher's (teacher.make_env())",
}
_DEFAULT_HINT = "the weights diverged: lower learning_rate, or check the env with SB3's VecCheckNan"


def _finite(value: th.Tensor | np.ndarray | dict[str, Any] | None) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    return bool(th.isfinite(th.as_tensor(value)).all())


def check_loss_is_finite(
    loss: th.Tensor, step: int, algorithm: str, **inputs: th.Tensor | dict[str, th.Tensor] | None
) -> None:
    """
    Raise :class:`~sb3_distill.errors.NonFiniteError` if ``loss`` is NaN or inf, naming the first non-finite input.

    :param loss: the scalar loss about to be back-propagated
    :param step: the number of env steps taken (``num_timesteps``), for the message
    :param algorithm: the algorithm's name, for the message
    :param inputs: the batch's tensors, by name (``observations``, ``rewards``, ``teacher outputs``, ...), in the
        order to blame them
    """
    if bool(th.isfinite(loss)):
        return
    culprit = next((name for name, value in inputs.items() if not _finite(value)), None)
    what = f"non-finite {culprit}" if culprit else "a non-finite loss with finite inputs"
    hint = _HINTS.get(culprit or "", _DEFAULT_HINT)
    raise NonFiniteError(
        f"{algorithm} stopped at env step {step}: {what} in the training batch (loss = {loss.item()}). The weights were "
        f"not updated with it. Likely cause: {hint}."
    )


def check_observations_are_finite(observations: th.Tensor | np.ndarray | dict[str, Any], step: int, algorithm: str) -> None:
    """
    Raise :class:`~sb3_distill.errors.NonFiniteError` if the observations a policy is about to act on are NaN or inf.

    Meant for the ``except`` branch of a failed ``predict()`` (torch's distributions refuse NaN parameters with a
    ``ValueError`` that names neither the observation nor the step), so it costs nothing while training is healthy.

    :param observations: the observations the policy was given
    :param step: the number of env steps taken (``num_timesteps``), for the message
    :param algorithm: the algorithm's name, for the message
    """
    if _finite(observations):
        return
    raise NonFiniteError(
        f"{algorithm} stopped at env step {step}: the env returned a non-finite observation (NaN or inf), which the "
        f"policy cannot act on. The weights were not updated with it. Likely cause: {_HINTS['observations']}."
    )


__all__ = ["check_loss_is_finite", "check_observations_are_finite"]
