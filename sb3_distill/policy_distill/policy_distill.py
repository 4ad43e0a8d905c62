import dataclasses
import copy
import math
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import ConstantSchedule

from sb3_distill.common.datasets import DatasetError, check_dataset_spaces, load_teacher_dataset, scale_box_actions
from sb3_distill.common.guards import check_loss_is_finite, check_observations_are_finite
from sb3_distill.common.policy_terms import (
    DEFAULT_TEMPERATURES,
    DistillTerm,
    TeacherTargets,
    check_teacher_weights,
    per_teacher,
    policy_term,
    teacher_targets,
    value_term,
)
from sb3_distill.common.renamed import accepts_renamed_keywords
from sb3_distill.common.buffers import (
    TeacherCacheMixin,
    as_teacher_replay_buffer,
    teacher_replay_buffer_class,
)
from sb3_distill.common.obs import Obs
from sb3_distill.common.teacher_observations import env_teacher_observation_space
from sb3_distill.common.weight_average import check_ema_tau, ema_update, swap_weights
from sb3_distill.common.actor_critic import CnnPolicy, MlpPolicy, MultiInputPolicy
from sb3_distill.common.actor_critic import ActorCriticStudentMixin
from sb3_distill.teachers import Teacher
from sb3_distill.teachers.loading import TeacherSpec

SelfPolicyDistill = TypeVar("SelfPolicyDistill", bound="PolicyDistill")
DataPolicy = str | float | Callable[[float], float]


def teacher_share_schedule(data_policy: DataPolicy) -> Schedule:
    """
    :param data_policy: ``"student"`` (β = 0), ``"teacher"`` (β = 1), a share β in [0, 1], or an SB3 schedule of
        the remaining progress (1 → 0) giving β
    :return: the schedule of β, the probability that a teacher rather than the student acts
    """
    if isinstance(data_policy, str):
        shares = {"student": 0.0, "teacher": 1.0}
        if data_policy not in shares:
            raise ValueError(
                f"Unknown data_policy {data_policy!r}: use 'student', 'teacher', a teacher share in [0, 1] "
                "or an SB3 schedule (e.g. LinearSchedule(1.0, 0.0, 0.5))."
            )
        return ConstantSchedule(shares[data_policy])
    if callable(data_policy):
        for progress in (1.0, 0.0):
            if not 0.0 <= float(data_policy(progress)) <= 1.0:
                raise ValueError(
                    f"The data_policy schedule gives {data_policy(progress)} at progress {progress}: it must stay in [0, 1]."
                )
        return data_policy
    share = float(data_policy)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"data_policy={data_policy}: a teacher share must be in [0, 1].")
    return ConstantSchedule(share)


class PolicyDistill(ActorCriticStudentMixin, OffPolicyAlgorithm):
    """
    Policy distillation into an SB3 actor-critic student, from one or several teachers, online or offline.

    For each state s of a replay batch:
    L = Σ_i w_i · (policy_coef · L_policy,i + distill_value_coef · (V_Ti(s) - V_S(s))²).
    L_policy (``distill_loss``, per teacher): ``"kl"`` — KL(π_T‖π_S) (or KL(π_S‖π_T) with
    ``kl_direction="student_teacher"``) between categorical policies, π_T = softmax(z_T / T) with z_T the teacher's
    logits or Q-values, π_S = softmax(z_S) the student's own policy; between diagonal Gaussians for stochastic
    continuous teachers (PPO/A2C: in the action space; SAC/TQC: the pre-tanh Gaussians of a tanh-squashed student,
    which is the exact KL of the squashed policies); ``"mse"`` — mean squared error between the student's and the
    teacher's deterministic actions, scaled to [-1, 1] (TD3/DDPG); ``"nll"`` — -log π_S(a_T(s)) of the teacher's
    greedy action; ``"auto"`` — ``"kl"`` where the teacher has a distribution of the student's kind, else ``"mse"``.
    V_T is :meth:`Teacher.values` (PPO/A2C critic; DQN: softmax(Q/T)-weighted Q; SAC/TD3/TQC: Q(s, π_T(s))), in the
    teacher's own reward scale and discount.

    Data (``data_policy``): at every env step a teacher acts with probability β (a teacher drawn with probability
    ∝ w_i, sampling its own policy), else the student (sampling its policy): ``"student"`` (β = 0: DAgger-like, the
    teachers label the student's states), ``"teacher"`` (β = 1), a float, or an SB3 schedule of β. Labels are
    computed once per stored transition (``cache_teacher_outputs``, in one batched pass over the new transitions when
    a sampled batch first holds one of them) and recomputed for the whole buffer when a teacher changes, so every
    state gets the teachers' current answer. Offline: give ``dataset=`` (see
    :func:`~sb3_distill.common.datasets.collect_teacher_dataset`) and call :meth:`learn_offline`, which never touches
    an env. Online while the teacher learns: see
    :class:`~sb3_distill.policy_distill.OnlineDistillCallback`.

    The student (``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy``: SB3's ``ActorCriticPolicy`` classes, tanh-squashed
    for SAC-like teachers) can be fine-tuned by RL: :meth:`to_ppo`, :meth:`to_a2c`. The teachers see raw
    observations (with their own VecNormalize statistics). They are never saved: ``load(path)`` predicts without a
    teacher, ``load(path, env=env, teacher=...)`` continues training.

    Defaults chosen for distillation (measured with ``scripts/measure_policy_distill.py``; docs/guide/policy_distill.md),
    where they differ from SB3's ``SAC`` / ``OffPolicyAlgorithm``:

    * ``gradient_steps=4`` (SB3: 1): the teacher labels any stored state for free, so more gradient steps per env
      step buy env-step efficiency with compute only. Mean over 3 seeds at teacher level: CartPole-v1 after 500 env
      steps with 4 (1,000 with 1), LunarLander-v3 after 5,000 with 4 (with 1, one seed: 0.80-0.87 from 3,000 to
      5,000, 1.03 at 7,500). On HalfCheetah (SAC teacher, one seed) both score 0.38-0.39 at 10k env steps, and 4
      cost 6x the training time: ``gradient_steps=1`` is the cheaper choice for large teachers.
    * ``learning_rate=1e-3`` (SAC: 3e-4): the targets are the teacher's fixed answers, not moving TD targets
      (3e-3 with one gradient step did no better on LunarLander-v3, one seed).
    * ``distill_value_coef=0`` (no value distillation): with ``MlpPolicy`` the value branch shares no weight with the policy,
      so the value term leaves the policy's training bit for bit unchanged and only adds a teacher pass and a backward
      pass per gradient step; it also works with teachers without a critic (ARS). Set ``distill_value_coef=0.5`` to warm-start
      the critic before fine-tuning with :meth:`to_ppo`.

    Parameters shared with SB3's off-policy algorithms (see ``stable_baselines3.SAC``):

    :param policy: the student policy (``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy`` or an ``ActorCriticPolicy``)
    :param env: the student's env (or its id); ``None`` is allowed with a ``dataset`` (offline distillation)
    :param learning_rate: Adam learning rate, a float or a schedule of the remaining progress
    :param buffer_size: replay buffer size
    :param learning_starts: env steps collected before the first gradient step
    :param batch_size: minibatch size of each gradient step
    :param train_freq: update the student every ``train_freq`` steps (or ``(n, "episode")``)
    :param gradient_steps: gradient steps per update (``-1``: as many as env steps collected); default 4 (see above)
    :param action_noise: noise added to the student's continuous actions when it acts
    :param replay_buffer_class: replay buffer class (default, and in place of SB3's ``ReplayBuffer`` /
        ``DictReplayBuffer``: :class:`~sb3_distill.common.buffers.TeacherReplayBuffer` /
        ``TeacherDictReplayBuffer``, SB3's buffers that also keep what the teacher sees and its cached outputs)
    :param replay_buffer_kwargs: keyword arguments of the replay buffer
    :param optimize_memory_usage: SB3's memory-efficient replay buffer
    :param policy_kwargs: keyword arguments of the student policy (``net_arch``, ``activation_fn``...)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log folder
    :param verbose: verbosity level
    :param seed: random seed
    :param device: torch device of the student (the teachers are moved to it)
    :param _init_setup_model: whether to build the networks at construction

    Distillation parameters:

    :param teacher: a :class:`~sb3_distill.teachers.Teacher`, any spec ``load_teacher`` takes (zoo id, zip, rl-zoo3
        folder, ``"hub:..."``, a loaded model — copied, so it may keep learning), or a list of them
    :param teacher_weights: w_i, one per teacher, >= 0, not all zero (default: 1 / n each); not normalized
    :param distill_loss: ``"auto"``, ``"kl"``, ``"mse"`` or ``"nll"``, or one per teacher (formerly ``policy_loss``,
        still accepted with a warning)
    :param kl_direction: ``"teacher_student"`` (KL(π_T‖π_S), mean-seeking) or ``"student_teacher"`` (KL(π_S‖π_T))
    :param temperature: T > 0 of the teacher's softmax(z_T / T) (discrete teachers), or one per teacher; default 1
        for policy teachers, 0.01 for Q-value teachers (DQN, QR-DQN)
    :param policy_coef: weight of the policy term (>= 0)
    :param distill_value_coef: weight of the value term (>= 0; 0, the default, turns value distillation off; e.g.
        0.5 to warm-start the critic before :meth:`to_ppo`; formerly ``value_coef``, still accepted with a warning)
    :param data_policy: who acts in the env: ``"student"``, ``"teacher"``, a teacher share β in [0, 1], or an SB3
        schedule of β
    :param squash_output: tanh-squash the student's continuous actions; default: when a teacher squashes (SAC, TQC,
        TD3...)
    :param dataset: a dataset path (or ``ReplayBuffer``) recorded by ``collect_teacher_dataset``, used as the
        replay buffer (for :meth:`learn_offline`)
    :param max_grad_norm: clip the gradient norm (``None``: no clipping, so that a large value loss cannot shrink
        the policy's gradient)
    :param cache_teacher_outputs: keep the teachers' outputs per transition in the replay buffer, computed in one
        batched pass over the transitions added since they were last computed, when a sampled batch first holds one
        of them (over the whole buffer when a teacher changes, e.g. an online teacher's new snapshot), instead of a
        teacher forward pass per sampled batch: the same values, and a gradient step that costs about a plain
        supervised step (``python -m scripts.benchmark``, docs/benchmarks.md). ``False``: the teachers label each
        sampled batch
    :param ema_tau: τ in (0, 1] of an exponential moving average of the student's weights, θ̄ ← (1 - τ) θ̄ + τ θ after
        every gradient step (``None``, the default: no average). With an average, ``policy`` holds θ̄ outside of
        :meth:`train`: it acts (in the env and in ``predict()``), is saved, exported and copied by :meth:`to_ppo`;
        the gradient steps update θ, kept in ``unaveraged_policy`` (saved too, so that training resumes exactly).
        It evens out the swings of a student trained at a high learning rate between evaluations.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    renamed_keywords: ClassVar[dict[str, str]] = {"policy_loss": "distill_loss", "value_coef": "distill_value_coef"}
    policy: ActorCriticPolicy
    teachers: list[Teacher]

    @accepts_renamed_keywords
    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 4,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        teacher: TeacherSpec | Sequence[TeacherSpec] | None = None,
        teacher_weights: Sequence[float] | None = None,
        distill_loss: str | Sequence[str] = "auto",
        kl_direction: str = "teacher_student",
        temperature: float | Sequence[float] | None = None,
        policy_coef: float = 1.0,
        distill_value_coef: float = 0.0,
        data_policy: DataPolicy = "student",
        squash_output: bool | None = None,
        dataset: str | pathlib.Path | ReplayBuffer | None = None,
        max_grad_norm: float | None = None,
        cache_teacher_outputs: bool = True,
        ema_tau: float | None = None,
    ) -> None:
        # Everything that can be checked without loading anything is checked first.
        self._init_terms(teacher, teacher_weights, distill_loss, kl_direction, temperature, squash_output, _init_setup_model)
        if not (policy_coef >= 0 and distill_value_coef >= 0 and policy_coef + distill_value_coef > 0):
            raise ValueError(
                f"policy_coef and distill_value_coef must be >= 0 and not both 0 (got {policy_coef}, {distill_value_coef})."
            )
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None (got {max_grad_norm}).")
        check_ema_tau(ema_tau)
        if env is None and dataset is None and _init_setup_model:
            raise ValueError("PolicyDistill needs an env, or a dataset (offline distillation) to take the spaces from.")

        self.policy_coef = float(policy_coef)
        self.distill_value_coef = float(distill_value_coef)
        self.data_policy = data_policy
        self.teacher_share_fn = teacher_share_schedule(data_policy)
        self.dataset = dataset
        self.max_grad_norm = max_grad_norm
        self.cache_teacher_outputs = cache_teacher_outputs
        self.ema_tau = ema_tau
        self.unaveraged_policy: ActorCriticPolicy | None = None

        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
            sde_support=False,
            supported_action_spaces=(spaces.Discrete, spaces.Box),
        )
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        # Dataset and teachers first: bad input must fail before buffers and networks are allocated.
        self._load_dataset()
        self._setup_terms()
        self._choose_replay_buffer()
        super()._setup_model()
        if self.ema_tau is not None:
            # θ (trained) and θ̄ (averaged) start equal; only the weights are used from this copy
            self.unaveraged_policy = copy.deepcopy(self.policy)
            self.unaveraged_policy.requires_grad_(False)

    def _averaged_parameters(self) -> tuple[list[th.Tensor], list[th.Tensor]]:
        """
        :return: the parameters of ``policy`` and of ``unaveraged_policy``, listed once per pair of policies (listing
            walks every module: at one gradient step per env step it cost more than the average itself)
        """
        assert self.unaveraged_policy is not None
        cached: tuple[Any, ...] | None = getattr(self, "_ema_parameters", None)
        if cached is None or cached[0] is not self.policy or cached[1] is not self.unaveraged_policy:
            trained: list[th.Tensor] = list(self.policy.parameters())
            averaged: list[th.Tensor] = list(self.unaveraged_policy.parameters())
            if len(trained) != len(averaged):
                raise RuntimeError("policy and unaveraged_policy no longer have the same parameters.")
            cached = self._ema_parameters = (self.policy, self.unaveraged_policy, trained, averaged)
        return cached[2], cached[3]

    def _swap_averaged_weights(self) -> None:
        """
        Exchange the weights of ``policy`` and ``unaveraged_policy`` (their storages: no copy; the optimizer keeps its
        parameter objects, which then hold the other weights).
        """
        swap_weights(*self._averaged_parameters())

    def _choose_replay_buffer(self) -> None:
        """SB3's buffers (and datasets) become the ones that keep what the teacher sees; a custom one must too."""
        plain = (None, ReplayBuffer, DictReplayBuffer)
        if self.replay_buffer_class in plain and self.observation_space is not None:
            self.replay_buffer_class = teacher_replay_buffer_class(self.observation_space)
        elif self.replay_buffer_class is not None and not issubclass(self.replay_buffer_class, TeacherCacheMixin):
            if self._vec_normalize_env is not None or env_teacher_observation_space(self.env) is not None:
                raise ValueError(
                    f"replay_buffer_class={self.replay_buffer_class.__name__} keeps only the student's observations, "
                    "and the teacher needs its own (the raw ones of a VecNormalize env, or the env's teacher "
                    "observations): leave replay_buffer_class=None or derive it from "
                    "sb3_distill.common.buffers.TeacherCacheMixin."
                )

    def _load_dataset(self) -> None:
        """Load and check the dataset, which becomes the replay buffer."""
        if self.dataset is None:
            return
        if isinstance(self.dataset, ReplayBuffer):
            dataset = self.dataset
        else:
            dataset = load_teacher_dataset(self.dataset)
        if self.env is None and getattr(self, "observation_space", None) is None:
            # Offline without an env: the dataset says what the student observes and does.
            self.observation_space, self.action_space, self.n_envs = dataset.observation_space, dataset.action_space, 1
            if not isinstance(self.action_space, (spaces.Discrete, spaces.Box)):
                raise DatasetError(f"PolicyDistill supports Discrete and Box actions; the dataset has {self.action_space}.")
        else:
            check_dataset_spaces(dataset, self.observation_space, self.action_space, "the env")
        dataset.device = self.device
        # Same data and format; the buffer also caches the teachers' outputs.
        self.replay_buffer = as_teacher_replay_buffer(dataset)

    def _check_teacher(self, teacher: Teacher) -> None:
        if self.dataset is not None and self.replay_buffer is not None:
            what = f"the teacher {teacher!r}"
            check_dataset_spaces(self.replay_buffer, teacher.observation_space, teacher.action_space, what)
        super()._check_teacher(teacher)

    def set_teacher(self, teacher: TeacherSpec, index: int = 0) -> None:
        """
        Replace one teacher (checked as at construction), e.g. with a newer snapshot of a learning model.

        :param teacher: the new teacher (any spec ``load_teacher`` takes, or a model, which is copied)
        :param index: which teacher to replace
        """
        if not 0 <= index < len(self._terms):
            raise IndexError(f"This PolicyDistill has {len(self._terms)} teacher(s); there is no teacher {index}.")
        others = [term.teacher for i, term in enumerate(self._terms) if i != index]
        loaded = self._resolve_one(teacher, others[0] if others else None)
        old = self._terms[index]
        requested = per_teacher("distill_loss", self.distill_loss, len(self._terms))[index]
        self._terms[index] = DistillTerm(loaded, old.weight, self._check_distill_loss(loaded, requested), old.temperature)
        specs: list[Any] = list(self.teacher_specs)
        specs[index] = teacher
        self._set_teachers([term.teacher for term in self._terms], specs)

    def _require_terms(self) -> list[DistillTerm]:
        self._require_teachers()
        return self._terms

    # ------------------------------------------------------------------ data
    def teacher_share(self) -> float:
        """
        :return: β, the probability that a teacher acts at the current progress
        """
        return float(self.teacher_share_fn(self._current_progress_remaining))

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        # No uniform warm-up: an untrained student already acts almost at random, and its states are the ones it
        # must learn to act in (DAgger).
        try:
            actions, buffer_actions = super()._sample_action(0, action_noise, n_envs)
        except ValueError:
            # torch's distributions refuse a NaN observation with a message that names neither it nor the step
            check_observations_are_finite(self._last_obs, self.num_timesteps, type(self).__name__)  # type: ignore[arg-type]
            raise
        share = self.teacher_share()
        play = np.random.rand(n_envs) < share
        if not play.any():
            return actions, buffer_actions
        terms = self._require_terms()
        weights = np.array([term.weight for term in terms])
        teacher = terms[np.random.choice(len(terms), p=weights / weights.sum())].teacher
        raw_obs = self._teacher_current_observations()  # what the teachers see (raw: not the student's normalization)
        try:
            teacher_actions, _ = teacher.predict(raw_obs, deterministic=False)  # type: ignore[arg-type]
        except ValueError:
            check_observations_are_finite(raw_obs, self.num_timesteps, type(self).__name__)  # type: ignore[arg-type]
            raise
        mask = play.reshape(-1, *([1] * (actions.ndim - 1)))
        actions = np.where(mask, teacher_actions, actions)
        buffer_actions = np.where(mask, scale_box_actions(self.action_space, teacher_actions), buffer_actions)
        return actions, buffer_actions

    # ------------------------------------------------------------------ the loss
    def _teacher_targets(self, terms: list[DistillTerm], replay_data: Any) -> list[TeacherTargets]:
        """Each teacher's targets on a batch: cached in the replay buffer, else one forward pass per teacher."""
        cached = getattr(replay_data, "teacher_outputs", None)
        if cached is not None:
            return [_targets_from_outputs(cached, index) for index in range(len(terms))]
        obs = _teacher_obs(replay_data)
        value = self.distill_value_coef > 0
        return [teacher_targets(term, obs, policy=self.policy_coef > 0, value=value) for term in terms]

    def _update_teacher_outputs(self, terms: list[DistillTerm]) -> None:
        """Fill the replay buffer's cache for the transitions added since the last update (all, for new teachers)."""
        if not (self.cache_teacher_outputs and isinstance(self.replay_buffer, TeacherCacheMixin)):
            return
        policy, value = self.policy_coef > 0, self.distill_value_coef > 0

        def outputs(obs: Obs) -> dict[str, th.Tensor]:
            named = {}
            for index, term in enumerate(terms):
                targets = teacher_targets(term, obs, policy=policy, value=value)
                for name in _TARGET_FIELDS:
                    tensor = getattr(targets, name)
                    if tensor is not None:
                        named[f"{index}/{name}"] = tensor
            return named

        # What the outputs depend on: each teacher (weights, statistics), its loss and temperature, which terms
        key = "|".join(f"{term.teacher.fingerprint}:{term.distill_loss}:{term.temperature}" for term in terms)
        # Lazy: new transitions are labelled when a batch first holds one (in one pass with those gathered meanwhile)
        self.replay_buffer.update_teacher_outputs(outputs, key=f"{key}|policy={policy}|value={value}", lazy=True)

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        terms = self._require_terms()
        assert self.replay_buffer is not None
        self._update_teacher_outputs(terms)
        if not self.policy.training:  # predict() leaves it in eval mode; switching every module costs a little
            self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        average = None
        if self.unaveraged_policy is not None:
            self._swap_averaged_weights()  # train θ; unaveraged_policy holds θ̄ meanwhile
            average = ema_update(float(self.ema_tau))  # type: ignore[arg-type]

        # Logged values stay tensors until the end: no device sync per gradient step for them
        logged: list[tuple[th.Tensor, ...]] = []
        agreements: list[th.Tensor] = []
        zero = th.zeros((), device=self.device)
        # The loss reads nothing of the teachers but their cached outputs: batches that have them need not carry
        # the teachers' observations
        lean: dict[str, bool] = {"outputs_suffice": True} if isinstance(self.replay_buffer, TeacherCacheMixin) else {}
        for _ in range(gradient_steps):
            # Normalized for the student as SB3 normalizes; what the teachers see (if needed) and said rides along
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env, **lean)
            observations = replay_data.observations
            policy_loss = value_loss = zero
            try:
                targets = self._teacher_targets(terms, replay_data)
                if self.policy_coef > 0:
                    distribution = self.policy.get_distribution(observations)
                    squashes = bool(self.policy.squash_output)
                    weighted = []
                    direction: Any = self.kl_direction  # checked at construction
                    for term, term_targets in zip(terms, targets, strict=True):
                        term_loss, term_agreement = policy_term(
                            term, distribution, term_targets, direction, squashes, self.action_space
                        )
                        weighted.append((term.weight, term_loss))
                        if term_agreement is not None:
                            agreements.append(term_agreement.detach())
                    policy_loss = _weighted_sum(weighted, zero)
                if self.distill_value_coef > 0:
                    student_values = self.policy.predict_values(observations).flatten()
                    value_loss = _weighted_sum(
                        [(term.weight, value_term(student_values, t)) for term, t in zip(terms, targets, strict=True)], zero
                    )
                loss = _weighted_sum([(self.policy_coef, policy_loss), (self.distill_value_coef, value_loss)], zero)
            except ValueError:
                # torch's distributions refuse NaN parameters before the loss exists: diagnose, else re-raise
                self._check_finite(th.tensor(float("nan")), replay_data, terms)
                raise
            self._check_finite(loss, replay_data, terms)

            self.policy.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            if average is not None:
                trained, averaged = self._averaged_parameters()
                average(averaged, trained, None)

            logged.append((loss, policy_loss, value_loss))

        if self.unaveraged_policy is not None:
            self._swap_averaged_weights()  # θ̄ acts, θ waits for the next gradient step
        self._n_updates += gradient_steps
        self._record_train_logs(logged, agreements)

    def _record_train_logs(self, logged: list[tuple[th.Tensor, ...]], agreements: list[th.Tensor]) -> None:
        """Log the means over a train() call's gradient steps (loss, policy and value terms, agreement) and more."""
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if logged:
            if len(logged) == 1:
                mean_loss, mean_policy, mean_value = (value.item() for value in logged[0])
            else:
                mean_loss, mean_policy, mean_value = th.stack([th.stack(row) for row in logged]).detach().mean(dim=0).tolist()
            self.logger.record("train/loss", mean_loss)
            self.logger.record("train/policy_loss", mean_policy)
            self.logger.record("train/value_loss", mean_value)
        if agreements:
            agreement = agreements[0] if len(agreements) == 1 else th.stack(agreements).mean()
            self.logger.record("train/teacher_agreement", agreement.item())
        if isinstance(self.action_space, spaces.Box):
            self.logger.record("train/std", self.policy.log_std.detach().exp().mean().item())
        self.logger.record("train/teacher_share", self.teacher_share())

    def _check_finite(self, loss: th.Tensor, batch: Any, terms: list[DistillTerm]) -> None:
        """Raise a NonFiniteError naming the culprit if the loss or the batch's rewards are NaN / inf (one check)."""
        # The loss does not use rewards, but a NaN reward is a broken env all the same; 0 · NaN = 0 · inf = NaN
        # folds them into the loss's single check.
        probe = loss.detach() + (batch.rewards * 0).sum()
        if math.isfinite(probe.item()):
            return
        cached = getattr(batch, "teacher_outputs", None)  # what the loss used (the batch then has no teacher observations)
        check_loss_is_finite(
            probe,
            self.num_timesteps,
            type(self).__name__,
            observations=batch.observations,
            rewards=batch.rewards,
            **{"teacher outputs": cached if cached is not None else self._teacher_outputs(_teacher_obs(batch), terms)},
        )

    def _teacher_outputs(self, obs: Obs, terms: list[DistillTerm]) -> dict[str, th.Tensor]:
        """What the loss takes from each teacher on ``obs`` (only computed to name a non-finite value)."""
        outputs: dict[str, th.Tensor] = {}
        for index, term in enumerate(terms):
            teacher = term.teacher
            try:
                with th.no_grad():
                    outputs[f"{index}"] = teacher.action_logits(obs) if teacher.is_discrete else teacher.actions(obs)
                    if self.distill_value_coef > 0:
                        outputs[f"{index}/values"] = teacher.values(obs)
            except ValueError:  # the teacher's own distribution refused a NaN
                outputs[f"{index}"] = th.tensor(float("nan"))
        return outputs

    # ------------------------------------------------------------------ learning
    def _check_buffer_fits_env(self) -> None:
        assert self.replay_buffer is not None
        if self.env is not None and self.replay_buffer.n_envs != self.env.num_envs:
            raise DatasetError(
                f"The replay buffer (dataset) was recorded with {self.replay_buffer.n_envs} env(s) and the env has "
                f"{self.env.num_envs}: learn() adds to it, so use an env with as many envs, or learn_offline()."
            )

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        # Called by learn() before the env is reset (learn_offline() never calls it): what stepping an env needs.
        if self.env is None:
            raise ValueError("learn() steps an env and this model has none: model.set_env(env), or learn_offline().")
        self._check_buffer_fits_env()
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def setup_learn_without_env(
        self, total_timesteps: int, callback: MaybeCallback = None, reset_num_timesteps: bool = True, tb_log_name: str = "run"
    ) -> BaseCallback:
        """
        What ``learn()`` sets up (counters, logger, callbacks), without resetting or stepping the env: for
        :meth:`learn_offline` and :class:`~sb3_distill.policy_distill.OnlineDistillCallback`.

        It is SB3's own ``OffPolicyAlgorithm._setup_learn``, run with a stand-in for the env (which SB3 would reset)
        that hands back the student's last observation; the callbacks are then initialized with the real env.

        :param total_timesteps: the budget the progress (and schedules) refer to
        :param callback: callback(s) of the student
        :param reset_num_timesteps: whether to restart the counters
        :param tb_log_name: name of the tensorboard run
        :return: the student's callback
        """
        env = self.env
        last = (self._last_obs, self._last_episode_starts, getattr(self, "_last_original_obs", None))
        self.env = _NotReset(self.n_envs, self._last_obs)  # type: ignore[assignment]
        try:
            OffPolicyAlgorithm._setup_learn(self, total_timesteps, None, reset_num_timesteps, tb_log_name)
        finally:
            self.env = env
            self._last_obs, self._last_episode_starts, self._last_original_obs = last
        return self._init_callback(callback)

    def learn_offline(
        self: SelfPolicyDistill,
        gradient_steps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1_000,
        tb_log_name: str = "PolicyDistill_offline",
        reset_num_timesteps: bool = True,
    ) -> SelfPolicyDistill:
        """
        Distill from the ``dataset`` alone: ``gradient_steps`` gradient steps, no env step, no env reset.

        Callbacks are called once per gradient step (an ``EvalCallback(eval_freq=k)`` evaluates every k gradient
        steps); ``num_timesteps`` stays at the number of env steps taken (0 for a purely offline student).

        :param gradient_steps: number of gradient steps
        :param callback: callback(s) called after every gradient step
        :param log_interval: dump the logs every ``log_interval`` gradient steps
        :param tb_log_name: name of the tensorboard run
        :param reset_num_timesteps: whether to restart the counters
        :return: the trained model
        """
        self._require_teachers()
        if self.dataset is None:
            raise DatasetError(
                "learn_offline() distills from a dataset: PolicyDistill(..., dataset='teacher_data.npz'), recorded with "
                "collect_teacher_dataset(teacher, env, n_steps, path)."
            )
        if env_teacher_observation_space(self.env) is not None:
            raise DatasetError(
                "The student's env supplies teacher observations, and a dataset holds only the observations it was "
                "recorded with: learn_offline() cannot give the teacher its own. Use learn() on the env, or a dataset "
                "recorded on the env the teacher observes."
            )
        vec_normalize = self._vec_normalize_env
        if vec_normalize is not None and vec_normalize.training and vec_normalize.norm_obs:
            raise DatasetError(
                "The student's env is VecNormalize(training=True), but learn_offline() never steps it, so its statistics "
                "would never be fit: use an unnormalized env (the teachers normalize for themselves) or load fitted "
                "statistics and set training=False."
            )
        callback = self.setup_learn_without_env(gradient_steps, callback, reset_num_timesteps, tb_log_name)
        callback.on_training_start(locals(), globals())
        for step in range(gradient_steps):
            self._current_progress_remaining = 1.0 - step / gradient_steps
            self.train(gradient_steps=1, batch_size=self.batch_size)
            callback.update_locals(locals())
            if not callback.on_step():
                break
            if log_interval > 0 and (step + 1) % log_interval == 0:
                self.logger.record("time/time_elapsed", int((time.time_ns() - self.start_time) / 1e9), exclude="tensorboard")
                self.logger.dump(step=self._n_updates)
        callback.on_training_end()
        return self

    # ------------------------------------------------------------------ fine-tuning
    def to_on_policy(
        self, algorithm_class: type[OnPolicyAlgorithm] = PPO, env: GymEnv | str | None = None, **kwargs: Any
    ) -> OnPolicyAlgorithm:
        """
        A PPO / A2C (any ``OnPolicyAlgorithm``) whose policy starts from the student's weights, to fine-tune by RL.

        The optimizer is the new algorithm's own (fresh). The architecture (``policy_kwargs``) is the student's.

        :param algorithm_class: ``PPO``, ``A2C`` or another on-policy algorithm with actor-critic policies
        :param env: the env to fine-tune on (default: the student's env, with its VecNormalize if any)
        :param kwargs: keyword arguments of the algorithm (``learning_rate``, ``n_steps``, ``seed``...)
        :return: the new model
        """
        env = env if env is not None else self.env
        if env is None:
            raise ValueError("to_on_policy() needs an env: to_ppo(env, ...).")
        for key in ("policy_kwargs", "use_sde"):
            if key in kwargs:
                raise ValueError(f"{key} is fixed by the student's architecture; it cannot be passed to to_on_policy().")
        kwargs.setdefault("device", self.device)
        model = algorithm_class(self.policy_class, env, policy_kwargs=dict(self.policy_kwargs), **kwargs)  # type: ignore[arg-type]
        model.policy.load_state_dict(self.policy.state_dict())
        return model

    def to_ppo(self, env: GymEnv | str | None = None, **kwargs: Any) -> PPO:
        """
        :param env: the env to fine-tune on (default: the student's env)
        :param kwargs: PPO's keyword arguments
        :return: a PPO whose policy is a copy of the student
        """
        return self.to_on_policy(PPO, env, **kwargs)  # type: ignore[return-value]

    def to_a2c(self, env: GymEnv | str | None = None, **kwargs: Any) -> A2C:
        """
        :param env: the env to fine-tune on (default: the student's env)
        :param kwargs: A2C's keyword arguments
        :return: an A2C whose policy is a copy of the student
        """
        return self.to_on_policy(A2C, env, **kwargs)  # type: ignore[return-value]

    # ------------------------------------------------------------------ save / load
    def load_replay_buffer(self, path: str | pathlib.Path | Any, truncate_last_traj: bool = True) -> None:
        """
        SB3's ``load_replay_buffer``; a plain SB3 buffer (a dataset, or one saved before the teacher buffers) becomes
        the matching teacher buffer (same data), whose cache is then filled at the next update.

        :param path: the pickled replay buffer
        :param truncate_last_traj: SB3's meaning
        """
        super().load_replay_buffer(path, truncate_last_traj)
        assert self.replay_buffer is not None
        self.replay_buffer = as_teacher_replay_buffer(self.replay_buffer)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "dataset", "_ema_parameters"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        averaged = ["unaveraged_policy"] if self.unaveraged_policy is not None else []
        return ["policy", "policy.optimizer", *averaged], []


def _weighted_sum(terms: list[tuple[float, th.Tensor]], zero: th.Tensor) -> th.Tensor:
    """Σ w · x over the terms with w ≠ 0 (``zero`` if none), without the multiplications by 1 (the same value)."""
    total = None
    for weight, value in terms:
        if weight != 0:
            weighted = value if weight == 1 else weight * value
            total = weighted if total is None else total + weighted
    return zero if total is None else total


class _NotReset:
    """Stands in for the env in SB3's ``_setup_learn``: its ``reset()`` steps nothing and returns the last observation."""

    def __init__(self, num_envs: int, last_obs: Any) -> None:
        self.num_envs = num_envs
        self._last_obs = last_obs

    def reset(self) -> Any:
        return self._last_obs


def _teacher_obs(replay_data: Any) -> Obs:
    """What the teachers see of a batch: kept by the teacher buffers, else the samples (no VecNormalize)."""
    kept = getattr(replay_data, "teacher_observations", None)
    return replay_data.observations if kept is None else kept


_TARGET_FIELDS = tuple(f.name for f in dataclasses.fields(TeacherTargets))


def _targets_from_outputs(outputs: dict[str, th.Tensor], index: int) -> TeacherTargets:
    """Teacher ``index``'s targets from the buffer's cached outputs (named ``"<index>/<field>"``)."""
    return TeacherTargets(**{name: outputs.get(f"{index}/{name}") for name in _TARGET_FIELDS})


__all__ = ["DEFAULT_TEMPERATURES", "DistillTerm", "PolicyDistill", "check_teacher_weights", "teacher_share_schedule"]
