"""Replay samples for a student whose env may be VecNormalize-wrapped, while the teacher needs raw observations."""

from typing import NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill.common.obs import Obs

Samples = ReplayBufferSamples | DictReplayBufferSamples


class StudentTeacherBatch(NamedTuple):
    """One replay batch: what the student trains on (normalized as its env does) and what the teacher sees (raw)."""

    student: Samples
    teacher_obs: Obs
    teacher_next_obs: Obs


def _normalize(obs: Obs, vec_normalize: VecNormalize, device: th.device) -> Obs:
    if isinstance(obs, dict):
        numpy_obs: np.ndarray | dict[str, np.ndarray] = {key: value.cpu().numpy() for key, value in obs.items()}
    else:
        numpy_obs = obs.cpu().numpy()
    normalized = vec_normalize.normalize_obs(numpy_obs)
    if isinstance(normalized, dict):
        return {key: th.as_tensor(value, device=device) for key, value in normalized.items()}
    return th.as_tensor(normalized, device=device)


def sample_student_teacher(buffer: ReplayBuffer, batch_size: int, vec_normalize: VecNormalize | None) -> StudentTeacherBatch:
    """
    Sample once; return the batch as the student sees it and the raw observations for the teacher.

    SB3's buffers store raw observations and normalize at sampling time; sampling without the env gives the raw
    batch, which is then normalized here exactly as ``buffer.sample(batch_size, env=vec_normalize)`` would.

    :param buffer: the student's replay buffer
    :param batch_size: batch size
    :param vec_normalize: the student's ``VecNormalize`` wrapper, if any
    :return: the student's samples and the teacher's raw ``obs`` / ``next_obs``
    """
    raw = buffer.sample(batch_size)
    if vec_normalize is None:
        return StudentTeacherBatch(raw, raw.observations, raw.next_observations)
    device = raw.rewards.device
    rewards = vec_normalize.normalize_reward(raw.rewards.cpu().numpy())
    student = raw._replace(
        observations=_normalize(raw.observations, vec_normalize, device),  # type: ignore[arg-type]
        next_observations=_normalize(raw.next_observations, vec_normalize, device),  # type: ignore[arg-type]
        rewards=th.as_tensor(rewards, dtype=raw.rewards.dtype, device=device),
    )
    return StudentTeacherBatch(student, raw.observations, raw.next_observations)


def concat_obs(first: Obs, second: Obs) -> Obs:
    """
    :param first: a batch of observations (tensor or dict of tensors)
    :param second: another batch of the same structure
    :return: both batches stacked along the batch dimension (one forward pass instead of two)
    """
    if isinstance(first, dict):
        assert isinstance(second, dict)
        return {key: th.cat([first[key], second[key]]) for key in first}
    assert isinstance(second, th.Tensor)
    return th.cat([first, second])
