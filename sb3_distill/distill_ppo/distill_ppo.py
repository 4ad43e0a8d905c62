import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from sb3_distill.common.guards import check_loss_is_finite
from sb3_distill.common.policy_terms import DistillTerm, TeacherTargets, policy_term, teacher_targets, value_term
from sb3_distill.common.renamed import accepts_renamed_keywords
from sb3_distill.common.distill_coef import AUTO, QDAGGER, DistillCoef, DistillCoefMixin
from sb3_distill.common.obs import Obs, obs_rows
from sb3_distill.common.teacher_observations import env_teacher_observation_space
from sb3_distill.distill_ppo.buffers import TeacherDictRolloutBuffer, TeacherRolloutBuffer, TeacherRolloutMixin
from sb3_distill.distill_ppo.teacher_phase import TeacherPhaseMixin, TeacherPhaseSetting, check_teacher_phase_setting
from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.common.actor_critic import CnnPolicy, MlpPolicy, MultiInputPolicy
from sb3_distill.common.actor_critic import ActorCriticStudentMixin
from sb3_distill.teachers import Teacher
from sb3_distill.teachers.loading import TeacherSpec

#: Teacher outputs computed per forward pass when a rollout is labelled (bounds the memory of large rollouts).
TEACHER_CHUNK = 4096


class DistillPPO(TeacherPhaseMixin, DistillCoefMixin, ActorCriticStudentMixin, PPO):
    """
    PPO with a kickstarting term (Schmitt et al. 2018, "Kickstarting Deep Reinforcement Learning"): the student
    learns by PPO and, on the states of its own rollouts, is pulled towards its teacher(s):

    L = L_PPO + λ_t · Σ_i w_i · (L_policy,i + distill_value_coef · (V_Ti(s) − V_S(s))²)

    L_policy (``distill_loss``, per teacher) is PolicyDistill's: ``"kl"`` — KL(π_T‖π_S), the cross-entropy of the
    paper up to the teacher's entropy (discrete teachers: π_T = softmax(z_T / T) with z_T the logits or, for DQN /
    QR-DQN, the Q-values; stochastic continuous teachers: their diagonal Gaussian; SAC / TQC: the pre-tanh Gaussian,
    with a tanh-squashed student); ``"mse"`` — the deterministic actions, scaled to [-1, 1] (TD3 / DDPG); ``"nll"`` —
    -log π_S(a_T); ``"auto"`` — ``"kl"`` where the teacher has a distribution of the student's kind, else ``"mse"``.

    λ_t (``distill_coef``, the same forms as DistillDQN's, :mod:`sb3_distill.common.distill_coef`) is a float, an SB3
    schedule of the remaining progress, ``"lin_<λ_0>"``, or ``"qdagger"`` / ``"qdagger_<λ_0>"`` (QDagger's rule):
    λ_t = λ_0 · clip(1 − (G_S − G_random) / (G_T − G_random), 0, 1), with G_S the mean return of the student's last
    10 rollout episodes and G_T the best teacher's. It fades out as the student reaches its teacher's level, so PPO
    alone carries it beyond a weak teacher; if the student falls back, the teacher's pull returns. It is computed
    once per rollout; a λ_t of 0 costs nothing (plain PPO). The default, ``"auto"``, is this rule with λ_0 chosen
    from the teacher at each ``learn()``: 1 from the first update for a teacher that solves the env (its measured
    return reaches gymnasium's ``reward_threshold``, or the env has none); 0.1 for a weaker one, and only once the
    student stalls (its score has set no new best 4 times in a row,
    :class:`~sb3_distill.common.distill_coef.StallGate`), so that a weak teacher never holds back a student that
    improves on its own (measured: docs/guide/distill_ppo.md "Which default"); what it chose and why:
    ``distill_coef_choice``. For a teacher it judges strong on a discrete action space, ``"auto"`` also starts with a
    teacher phase (``teacher_rollout_steps``, ``pretrain_gradient_steps``, :mod:`sb3_distill.distill_ppo.teacher_phase`):
    the teacher plays the first rollout, counted in ``num_timesteps``, and the student is cloned on its states by the
    teacher term alone for 50 passes, before PPO's updates; imitating the teacher on the states of the student's own
    near-random first rollouts instead left it 120-240 below PPO from scratch on the mean up to 10k env steps
    (CartPole-v1, SB3's defaults, 5 seeds). ``"auto_<λ_0>"``, the rule's old name with a given λ_0, still works as
    ``"qdagger_<λ_0>"`` with a ``FutureWarning``.

    The teachers see raw observations (with their own VecNormalize statistics) even when the student's env is
    VecNormalize-wrapped, or the env's teacher observations when it supplies them
    (:mod:`sb3_distill.common.teacher_observations`): the rollout buffer keeps them. Their outputs on a rollout are
    computed once and reused over PPO's ``n_epochs``. They are never saved: ``load(path)`` predicts without a
    teacher, ``load(path, env=env)`` reloads the saved teacher spec, ``load(path, env=env, teacher=...)`` another.

    All of PPO's parameters (see ``stable_baselines3.PPO``) plus:

    :param teacher: a :class:`~sb3_distill.teachers.Teacher`, any spec ``load_teacher`` takes (zoo id, zip, rl-zoo3
        folder, ``"hub:..."``, a loaded model), or a list of them
    :param teacher_weights: w_i, one per teacher, >= 0, not all zero (default: 1 / n each)
    :param distill_coef: λ_t: a float >= 0, an SB3 schedule, ``"lin_<λ_0>"``, ``"qdagger"`` (QDagger's rule, λ_0 = 1),
        ``"qdagger_<λ_0>"`` (formerly ``"auto_<λ_0>"``, still accepted with a warning) or ``"auto"`` (the default:
        QDagger's rule, λ_0 chosen from the teacher; a weak teacher's pull waits for the student to stall)
    :param distill_loss: ``"kl"``, ``"mse"``, ``"nll"`` or ``"auto"`` (chosen from the teacher: ``"kl"`` where it has
        a distribution of the student's kind, else ``"mse"``), or one per teacher (formerly ``policy_loss``, still
        accepted with a warning)
    :param kl_direction: ``"teacher_student"`` (KL(π_T‖π_S), Kickstarting's cross-entropy) or ``"student_teacher"``
    :param temperature: T > 0 of a discrete teacher's softmax(z_T / T), or one per teacher; default 1 for policy
        teachers, 0.01 for Q-value teachers (DQN, QR-DQN)
    :param distill_value_coef: weight of value distillation (0: off). V_T is in the teacher's reward scale and
        discount: use it when the student's ``gamma`` and rewards are the teacher's.
    :param squash_output: tanh-squash the student's continuous actions; default: when a teacher squashes (SAC, TQC,
        TD3...), so that the Gaussian KL is exact
    :param reference_returns: ``(G_random, G_T)`` for ``distill_coef="qdagger"``; default ``None``: measured once per
        teacher, 10 episodes each, on a separate env (a copy of the student's env when it behaves differently from its
        registered id, e.g. shifted dynamics; not counted as training steps), and not saved (see
        :meth:`~sb3_distill.common.teacher_mixin.TeacherMixin.teacher_reference_returns`)
    :param teacher_rollout_steps: env steps the teacher plays (its greedy action; with several teachers, the one of the
        largest weight) before the student acts, rounded up to whole rollouts (``n_steps`` × ``n_envs``) and counted in
        ``num_timesteps``, once per model (DistillDQN's keyword, the same meaning). PPO's surrogate skips the teacher's
        transitions (its ratio is an importance weight for actions the student drew); the value loss and the teacher
        term keep them; QDagger's score counts only episodes the teacher played no step of. ``"auto"`` (default): one
        rollout when ``distill_coef="auto"`` judges the teacher strong (its return reaches the env's reward threshold,
        or the env has none) and the action space is discrete, else 0 (off)
    :param pretrain_gradient_steps: gradient steps (minibatches of ``batch_size``) of the teacher term alone on the
        teacher phase's last rollout, once, right after it (DistillDQN's keyword). ``"auto"`` (default): 50 passes over
        the rollout when the teacher plays one, else 0
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: ActorCriticPolicy
    rollout_buffer: RolloutBuffer

    @accepts_renamed_keywords
    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        teacher: TeacherSpec | Sequence[TeacherSpec] | None = None,
        teacher_weights: Sequence[float] | None = None,
        distill_coef: DistillCoef = AUTO,
        distill_loss: str | Sequence[str] = "auto",
        kl_direction: str = "teacher_student",
        temperature: float | Sequence[float] | None = None,
        distill_value_coef: float = 0.0,
        squash_output: bool | None = None,
        reference_returns: tuple[float, float] | None = None,
        teacher_rollout_steps: TeacherPhaseSetting = AUTO,
        pretrain_gradient_steps: TeacherPhaseSetting = AUTO,
    ) -> None:
        # Everything that can be checked without loading anything is checked first.
        self._init_terms(teacher, teacher_weights, distill_loss, kl_direction, temperature, squash_output, _init_setup_model)
        self.distill_coef = distill_coef
        self._parse_distill_coef()
        if not (math.isfinite(distill_value_coef) and distill_value_coef >= 0):
            raise ValueError(f"distill_value_coef must be finite and >= 0 (got {distill_value_coef}); 0 turns it off.")
        if reference_returns is not None and len(reference_returns) != 2:
            raise ValueError(f"reference_returns is (random_return, teacher_return); got {reference_returns}.")
        check_teacher_phase_setting("teacher_rollout_steps", teacher_rollout_steps)
        check_teacher_phase_setting("pretrain_gradient_steps", pretrain_gradient_steps)
        if teacher_rollout_steps == 0 and pretrain_gradient_steps not in (0, AUTO):
            raise ValueError(
                f"pretrain_gradient_steps={pretrain_gradient_steps} trains on the rollouts the teacher plays, and "
                "teacher_rollout_steps=0 plays none: give teacher_rollout_steps > 0 (or 'auto'), or leave "
                "pretrain_gradient_steps unset."
            )
        self.teacher_rollout_steps = teacher_rollout_steps
        self.pretrain_gradient_steps = pretrain_gradient_steps

        self.distill_value_coef = float(distill_value_coef)
        self.reference_returns = reference_returns
        #: What the default distill_coef chose as λ_0 and why (a sentence), once ``learn()`` has started; else ``None``

        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            rollout_buffer_class=rollout_buffer_class,
            rollout_buffer_kwargs=rollout_buffer_kwargs,
            target_kl=target_kl,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if getattr(self, "action_space", None) is not None and not isinstance(
            self.action_space, (spaces.Discrete, spaces.Box)
        ):
            raise ValueError(f"DistillPPO supports Discrete and Box action spaces; the env has {self.action_space}.")
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        # load(path, env, distill_coef=...) sets the attribute without __init__ (a model saved with an old spelling
        # holds it too): parse it here.
        self._restore_renamed_attributes()
        self._parse_distill_coef()
        # The teachers first: a wrong teacher must fail before buffers and networks are allocated.
        self._setup_terms()
        if self._coef_mode == QDAGGER and self.teachers and self.reference_returns is None and self._env_id() is None:
            raise ValueError(
                f"distill_coef={self.distill_coef!r} compares the student's returns with its teacher's, measured on the "
                "env, and neither the env nor the teacher has a registered env id: give "
                "reference_returns=(random_return, teacher_return) or a float / schedule distill_coef."
            )
        self._choose_rollout_buffer()
        super()._setup_model()

    def _choose_rollout_buffer(self) -> None:
        if self.rollout_buffer_class is None:
            dict_obs = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = TeacherDictRolloutBuffer if dict_obs else TeacherRolloutBuffer
            return
        vec_normalize = self.get_vec_normalize_env() if self.env is not None else None
        keeps_teacher_obs = issubclass(self.rollout_buffer_class, TeacherRolloutMixin)
        normalized = vec_normalize is not None and vec_normalize.norm_obs
        if (normalized or env_teacher_observation_space(self.env) is not None) and not keeps_teacher_obs:
            raise ValueError(
                f"rollout_buffer_class={self.rollout_buffer_class.__name__} stores only the student's observations, and "
                "the teacher needs its own (the raw ones of a VecNormalize env, or the env's teacher observations): "
                "derive it from sb3_distill.distill_ppo.TeacherRolloutMixin, or leave rollout_buffer_class unset."
            )

    def _check_teacher(self, teacher: Teacher) -> None:
        super()._check_teacher(teacher)
        if self.distill_value_coef > 0:
            vec_normalize = self.get_vec_normalize_env() if self.env is not None else None
            if vec_normalize is not None and vec_normalize.norm_reward:
                raise IncompatibleTeacherError(
                    "Value distillation regresses the student's values on the teacher's, which are in the raw reward "
                    "scale, and VecNormalize(norm_reward=True) scales the student's rewards: use norm_reward=False or "
                    "distill_value_coef=0."
                )

    def _choose_auto_coef(self) -> None:
        super()._choose_auto_coef()
        teacher_phase = self._choose_teacher_phase()
        if teacher_phase is not None and self.distill_coef_choice is not None:
            self.distill_coef_choice = self.distill_coef_choice.removesuffix(".") + teacher_phase + "."

    def _excluded_save_params(self) -> list[str]:
        # Chosen again at each learn(), or about the rollout buffer (not saved); what the teacher has played is saved
        excluded = ["_teacher_phase_steps", "_pretrain_steps", "_rollout_played_by_teacher", "_teacher_in_episode"]
        return [*super()._excluded_save_params(), *excluded]

    # ------------------------------------------------------------------ the kickstarting term
    def _rollout_teacher_targets(self) -> list[TeacherTargets] | None:
        """Each teacher's outputs on the whole rollout, in sample-index order; ``None`` if the buffer gives no indices."""
        if not isinstance(self.rollout_buffer, TeacherRolloutMixin):
            return None
        obs = self.rollout_buffer.rollout_teacher_observations()
        n_samples = self.rollout_buffer.buffer_size * self.rollout_buffer.n_envs
        chunks = [slice(start, start + TEACHER_CHUNK) for start in range(0, n_samples, TEACHER_CHUNK)]
        return [
            TeacherTargets.cat([self._teacher_targets(term, obs_rows(obs, chunk)) for chunk in chunks]) for term in self._terms
        ]

    def _teacher_targets(self, term: DistillTerm, obs: Obs) -> TeacherTargets:
        return teacher_targets(term, obs, policy=True, value=self.distill_value_coef > 0)

    def _distill_term(
        self, rollout_data: Any, student_values: th.Tensor | None, rollout_targets: list[TeacherTargets] | None
    ) -> tuple[th.Tensor, list[float], list[TeacherTargets]]:
        """
        Σ_i w_i · (L_policy,i + distill_value_coef · L_value,i) on a minibatch.

        :return: the loss, the teacher agreements (discrete teachers) and the targets used (for the finite check)
        """
        if rollout_targets is not None:
            batch_targets = [targets[rollout_data.indices] for targets in rollout_targets]
        else:  # a buffer without indices holds raw observations (checked at set-up): label the minibatch
            batch_targets = [self._teacher_targets(term, rollout_data.observations) for term in self._terms]
        # PPO's evaluate_actions() does not return the distribution: one more actor pass, only while λ_t > 0.
        distribution = self.policy.get_distribution(rollout_data.observations)
        squashes = bool(self.policy.squash_output)
        loss = th.zeros((), device=self.device)
        agreements = []
        for term, targets in zip(self._terms, batch_targets, strict=True):
            term_loss, agreement = policy_term(term, distribution, targets, self.kl_direction, squashes, self.action_space)  # type: ignore[arg-type]
            if student_values is not None and self.distill_value_coef > 0:
                term_loss = term_loss + self.distill_value_coef * value_term(student_values, targets)
            loss = loss + term.weight * term_loss
            if agreement is not None:
                agreements.append(agreement.item())
        return loss, agreements, batch_targets

    def train(self) -> None:
        """
        Update the policy on the rollout buffer: PPO's ``train()`` (stable_baselines3/ppo/ppo.py, ``PPO.train``) line
        for line, with the kickstarting term added to PPO's loss in one place (marked "Kickstarting") and a
        finite-loss check before ``backward()``. SB3 offers no hook into PPO's loss, hence the mirror.
        """
        self._require_teachers()
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizer learning rate
        self._update_learning_rate(self.policy.optimizer)
        # Compute current clip range
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        # Optional: clip range for the value function
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]

        # Kickstarting: λ_t for this rollout, and the teachers' outputs on its states, computed once for all epochs.
        distill_coef = self.current_distill_coef()
        # Teacher phase: after the teacher's last rollout, the teacher term alone first; on a rollout the teacher
        # played, no PPO surrogate (its ratio is an importance weight for actions the student drew).
        self._pretrain_on_teacher_rollout(self._distill_term)
        student_acted = not self._rollout_played_by_teacher
        rollout_targets = self._rollout_teacher_targets() if distill_coef > 0 else None

        entropy_losses = []
        pg_losses, value_losses = [], []
        clip_fractions = []
        distill_losses: list[float] = []
        agreements: list[float] = []

        continue_training = True
        # train for n_epochs epochs
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            # Do a complete pass on the rollout buffer
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    # Convert discrete action from float to long
                    actions = rollout_data.actions.long().flatten()

                values, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)
                values = values.flatten()
                # Normalize advantage
                advantages = rollout_data.advantages
                # Normalization does not make sense if mini batchsize == 1, see GH issue #325
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                # ratio between old and new policy, should be one at the first iteration
                ratio = th.exp(log_prob - rollout_data.old_log_prob)

                # clipped surrogate loss
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
                if not student_acted:  # Teacher phase: the teacher's actions
                    policy_loss = th.zeros_like(policy_loss)

                # Logging
                pg_losses.append(policy_loss.item())
                clip_fraction = th.mean((th.abs(ratio - 1) > clip_range).float()).item()
                clip_fractions.append(clip_fraction)

                if self.clip_range_vf is None:
                    # No clipping
                    values_pred = values
                else:
                    # Clip the difference between old and new value
                    # NOTE: this depends on the reward scaling
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                # Value loss using the TD(gae_lambda) target
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                value_losses.append(value_loss.item())

                # Entropy loss favor exploration
                if entropy is None:
                    # Approximate entropy when no analytical form
                    entropy_loss = -th.mean(-log_prob)
                else:
                    entropy_loss = -th.mean(entropy)

                entropy_losses.append(entropy_loss.item())

                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

                # Kickstarting: the only change to PPO's loss.
                batch_targets: list[TeacherTargets] = []
                if distill_coef > 0:
                    distill, batch_agreements, batch_targets = self._distill_term(rollout_data, values, rollout_targets)
                    loss = loss + distill_coef * distill
                    distill_losses.append(distill.item())
                    agreements.extend(batch_agreements)

                # Calculate approximate form of reverse KL Divergence for early stopping
                # see issue #417: https://github.com/DLR-RM/stable-baselines3/issues/417
                # and discussion in PR #419: https://github.com/DLR-RM/stable-baselines3/pull/419
                # and Schulman blog: http://joschu.net/blog/kl-approx.html
                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)

                if self.target_kl is not None and student_acted and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                # A NaN or inf stops the run here, before it reaches the weights
                self._check_finite(loss, rollout_data, batch_targets)
                # Optimization step
                self.policy.optimizer.zero_grad()
                loss.backward()
                # Clip grad norm
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())

        # Logs
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if self.clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
        self._record_distill_logs(distill_coef, distill_losses, agreements)

    def _check_finite(self, loss: th.Tensor, rollout_data: Any, batch_targets: list[TeacherTargets]) -> None:
        """Raise a NonFiniteError naming the first non-finite input if the loss is NaN or inf."""
        teacher_outputs = {
            f"{index}.{name}": value
            for index, targets in enumerate(batch_targets)
            for name, value in vars(targets).items()
            if value is not None
        }
        check_loss_is_finite(
            loss,
            self.num_timesteps,
            type(self).__name__,
            observations=rollout_data.observations,
            rewards=rollout_data.returns,
            **{"teacher outputs": teacher_outputs},
        )

    def _record_distill_logs(self, distill_coef: float, distill_losses: list[float], agreements: list[float]) -> None:
        self.logger.record("train/distill_coef", distill_coef)
        if distill_losses:
            self.logger.record("train/distill_loss", np.mean(distill_losses))
        if agreements:
            self.logger.record("train/teacher_agreement", np.mean(agreements))
        if self._rollout_played_by_teacher:
            self.logger.record("train/teacher_rollout", 1)


__all__ = ["DistillPPO"]
