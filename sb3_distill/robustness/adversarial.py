"""
Adversarial observations: FGSM and PGD in an L∞ ball, against the agent's own action preference.

The attacker moves each observation dimension by at most ``epsilon · scale`` (the scale of
:func:`~sb3_distill.robustness.observation_scale`; ``scale=1.0``: an absolute ball) to make the agent leave the action
it prefers on the clean observation (Huang et al. 2017, "Adversarial Attacks on Neural Network Policies"):

* discrete actions: maximize the cross-entropy of the clean greedy action under ``softmax(scores)``, the scores being
  the agent's Q-values (DQN, QR-DQN: mean over quantiles) or logits (PPO, A2C, PolicyDistill students);
* continuous actions: maximize the squared distance between the action taken and the clean deterministic action
  (Pattanaik et al. 2018). Its gradient vanishes at the clean observation, so FGSM starts from a random point half-way
  into the ball (R+FGSM, Tramèr et al. 2018).

``fgsm``: one signed-gradient step of size ε. ``pgd``: a uniformly random start in the ball, then ``steps`` signed-
gradient steps of ``2.5 · ε / steps``, each projected back onto the ball (Madry et al. 2018). Both stay within the
observation space's finite bounds. The gradient goes through the agent's own observation normalization (its
``VecNormalize`` statistics, or a teacher's), so the budget is in raw observation units.

Any SB3 / sb3-contrib model with a gradient-trained network (DQN, QR-DQN, PPO, A2C, SAC, TD3, TQC, the students of
sb3-distill) and :class:`~sb3_distill.Teacher` objects can be attacked. ARS (trained without gradients), recurrent
policies, exported files and plain functions cannot: :func:`differentiable_agent` says so before anything runs.
"""

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill.errors import TeacherError
from sb3_distill.robustness.observations import _fit, _Seeded
from sb3_distill.teachers.kinds import PolicyKind, policy_kind
from sb3_distill.teachers.teacher import Teacher

ATTACKS = ("fgsm", "pgd")


class AttackError(ValueError):
    """A model that cannot be attacked by gradient (no gradients, or observations the attack does not handle)."""


class DifferentiableAgent:
    """
    Raw observations (a float tensor batch) → the agent's action scores, differentiable with respect to the
    observations, with the agent's own observation normalization inside.

    :param policy: the agent's policy
    :param normalizer: its ``VecNormalize`` statistics, if any
    """

    def __init__(self, policy: BasePolicy, normalizer: VecNormalize | None = None) -> None:
        try:
            self.kind: PolicyKind = policy_kind(policy)
        except TeacherError as error:
            raise AttackError(f"This agent cannot be attacked: {error}") from error
        if self.kind.name == "ars":
            raise AttackError(
                "ARS is trained without gradients (random search), so a gradient attack (fgsm, pgd) says nothing "
                "about it: evaluate it under 'obs_noise' instead, or attack a gradient-trained agent (DQN, PPO, SAC, ...)."
            )
        if not isinstance(policy.observation_space, spaces.Box):
            raise AttackError(f"Gradient attacks need Box observations (vectors or images), not {policy.observation_space}.")
        self.policy = policy
        self.device = policy.device
        self.mean: th.Tensor | None = None
        if normalizer is not None and normalizer.norm_obs:
            statistics: Any = normalizer.obs_rms
            self.mean = th.as_tensor(statistics.mean, dtype=th.float32, device=self.device)
            self.std = th.sqrt(th.as_tensor(statistics.var, dtype=th.float32, device=self.device) + normalizer.epsilon)
            self.clip = float(normalizer.clip_obs)

    @property
    def is_discrete(self) -> bool:
        return self.kind.is_discrete

    def scores(self, obs: th.Tensor) -> th.Tensor:
        """
        :param obs: a batch of raw observations
        :return: Q-values, logits, or (continuous actions) the action in the env's bounds
        """
        if self.mean is not None:
            obs = th.clamp((obs - self.mean) / self.std, -self.clip, self.clip)
        scores = self.kind.action_scores(obs)
        return scores if self.is_discrete else self.kind.actions_from_scores(scores)


def differentiable_agent(model: Any) -> DifferentiableAgent:
    """
    The differentiable view of a model, or a clear error when it has none.

    :param model: an SB3 / sb3-contrib model, a :class:`~sb3_distill.Teacher`, or a policy
    :return: the agent
    :raises AttackError: for models without gradients (ARS, exported files, functions) or unsupported observations
    """
    if isinstance(model, Teacher):
        if hasattr(model, "experts"):  # an ExpertTeacher: its observation carries the expert's index, not a state
            raise AttackError(
                "An ExpertTeacher acts on observations ending with the expert's index, which an attack must not move: "
                "attack its experts one by one (teacher.experts)."
            )
        return DifferentiableAgent(model.policy, model.obs_normalizer)
    if isinstance(model, BaseAlgorithm):
        return DifferentiableAgent(model.policy, model.get_vec_normalize_env())
    if isinstance(model, BasePolicy):
        return DifferentiableAgent(model)
    where = getattr(model, "path", None)
    described = f"the exported file {where}" if where is not None else f"a {type(model).__name__}"
    raise AttackError(
        f"Gradient attacks (fgsm, pgd) need the agent's network, and {described} has no gradients: attack the "
        "model it comes from (its .zip, or the loaded SB3 model / Teacher)."
    )


class AdversarialObservation(_Seeded):
    """
    A transform (for :class:`~sb3_distill.robustness.StudentObservation`) that replaces each observation by an
    FGSM / PGD perturbation of it against ``model``.

    :param model: the attacked agent (see :func:`differentiable_agent`)
    :param epsilon: the radius of the L∞ ball, in units of ``scale``
    :param scale: per-dimension scale (see :func:`~sb3_distill.robustness.observation_scale`), or a float
    :param method: ``"fgsm"`` or ``"pgd"``
    :param steps: PGD's steps
    :param space: the observation space (for its finite bounds and dtype)
    :param seed: seed of the random starts
    """

    def __init__(
        self,
        model: Any,
        epsilon: float,
        scale: float | np.ndarray = 1.0,
        method: str = "pgd",
        steps: int = 10,
        space: spaces.Space | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if method not in ATTACKS:
            raise ValueError(f"Unknown attack {method!r}: use one of {', '.join(ATTACKS)}.")
        if not np.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"The attack's epsilon must be a finite number >= 0, not {epsilon}.")
        if int(steps) != steps or steps < 1:
            raise ValueError(f"PGD needs a whole number of steps >= 1, not {steps}.")
        self.agent = differentiable_agent(model)
        self.method, self.steps = method, int(steps)
        self.radius = float(epsilon) * np.asarray(scale, dtype=np.float64)
        self.space = space if isinstance(space, spaces.Box) else None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if not np.any(self.radius > 0):
            return obs
        adversarial = attack(self.agent, np.asarray(obs)[None], self.radius, self.method, self.steps, self.rng, self.space)
        return _fit(adversarial[0], self.space, np.asarray(obs).dtype)


def _objective(agent: DifferentiableAgent, obs: th.Tensor, target: th.Tensor) -> th.Tensor:
    scores = agent.scores(obs)
    if agent.is_discrete:
        return th.nn.functional.cross_entropy(scores.double(), target, reduction="sum")
    return ((scores - target) ** 2).sum()


def attack(
    agent: DifferentiableAgent,
    obs: np.ndarray,
    radius: np.ndarray,
    method: str = "pgd",
    steps: int = 10,
    rng: np.random.Generator | None = None,
    space: spaces.Box | None = None,
) -> np.ndarray:
    """
    FGSM or PGD on a batch of observations (see the module's docstring).

    :param agent: the attacked agent
    :param obs: a batch of raw observations
    :param radius: per-dimension L∞ radius (broadcast against one observation)
    :param method: ``"fgsm"`` or ``"pgd"``
    :param steps: PGD's steps
    :param rng: the random starts' generator
    :param space: the observation space, whose finite bounds the perturbed observations stay in
    :return: the perturbed batch (float)
    """
    rng = rng or np.random.default_rng()
    device = agent.device
    clean = th.as_tensor(np.asarray(obs, dtype=np.float32), device=device)
    eps = th.as_tensor(np.broadcast_to(radius, clean.shape[1:]).copy(), dtype=th.float32, device=device)
    low, high = clean - eps, clean + eps
    if space is not None:
        low = th.maximum(
            low, th.as_tensor(np.where(np.isfinite(space.low), space.low, -np.inf), dtype=th.float32, device=device)
        )
        high = th.minimum(
            high, th.as_tensor(np.where(np.isfinite(space.high), space.high, np.inf), dtype=th.float32, device=device)
        )
    agent.policy.set_training_mode(False)
    with th.no_grad():
        scores = agent.scores(clean)
        target = scores.argmax(dim=1) if agent.is_discrete else scores
    uniform = th.as_tensor(rng.uniform(-1.0, 1.0, size=clean.shape), dtype=th.float32, device=device)
    if method == "fgsm":
        start = clean if agent.is_discrete else clean + 0.5 * eps * th.sign(uniform)
        step_size, n_steps = (eps if agent.is_discrete else 0.5 * eps), 1
    else:
        start, step_size, n_steps = clean + eps * uniform, 2.5 * eps / steps, steps
    adversarial = th.clamp(start, low, high)
    for _ in range(n_steps):
        adversarial = adversarial.detach().requires_grad_(True)
        (gradient,) = th.autograd.grad(_objective(agent, adversarial, target), adversarial)
        adversarial = th.clamp(adversarial.detach() + step_size * th.sign(gradient), low, high)
    return adversarial.cpu().numpy()


__all__ = ["ATTACKS", "AdversarialObservation", "AttackError", "DifferentiableAgent", "attack", "differentiable_agent"]
