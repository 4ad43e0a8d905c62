"""
Resume after an interruption loses nothing.

1. Exactly: a run checkpointed between two rollouts (model, replay buffer with its cached teacher outputs,
   VecNormalize), then resumed, ends with the same weights as the same run left alone, bit for bit, once the state
   SB3 does not save is carried over too (the env's state, the global RNGs, the action space's RNG, which ``load``
   reseeds). Without that state the resumed run is a different sample of the same training, and must be as good.
2. After a SIGKILL at a random moment of a run with ``CheckpointCallback(save_replay_buffer=True,
   save_vecnormalize=True)``, the newest complete checkpoint resumes, the run finishes its budget with every
   schedule where it was, and it scores like an uninterrupted run.
"""

import copy
import multiprocessing
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill import DistillDQN, PolicyDistill

TINY = dict(learning_starts=100, buffer_size=1_000, batch_size=32, policy_kwargs=dict(net_arch=[16]), seed=0, device="cpu")
RUNS = {
    "DistillDQN, cache, VecNormalize": (DistillDQN, {"cache_teacher_outputs": True}, True),
    "DistillDQN, qdagger": (
        DistillDQN,
        {"recipe": "qdagger", "teacher_rollout_steps": 150, "pretrain_gradient_steps": 20, "cache_teacher_outputs": False},
        False,
    ),
    "PolicyDistill, teacher share schedule, VecNormalize": (
        PolicyDistill,
        {"data_policy": LinearSchedule(1.0, 0.0, 1.0), "distill_value_coef": 0.0},
        True,
    ),
}
TOTAL, CHECKPOINT_AT = 600, 300


def _env(normalize: bool, seed: int = 0):
    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    return VecNormalize(env, norm_reward=False) if normalize else env


class SnapshotBetweenRollouts(BaseCallback):
    """
    At the first rollout start after ``at`` steps, write a checkpoint as a user would (model, replay buffer,
    VecNormalize) and keep what SB3 does not save: the env's state and the RNGs.
    """

    def __init__(self, at: int, folder: Path) -> None:
        super().__init__()
        self.at, self.folder, self.taken_at, self.unsaved = at, folder, None, None

    def _on_rollout_start(self) -> None:
        if self.taken_at is not None or self.num_timesteps < self.at:
            return
        self.taken_at = self.num_timesteps
        self.model.save(self.folder / "model.zip")
        self.model.save_replay_buffer(self.folder / "buffer.pkl")
        vec_normalize = self.model.get_vec_normalize_env()
        inner = vec_normalize.venv if vec_normalize is not None else self.model.get_env()
        if vec_normalize is not None:
            vec_normalize.save(self.folder / "vecnormalize.pkl")
        self.unsaved = {
            "env": copy.deepcopy(inner),  # its episode and RNG: not in any SB3 file
            "numpy": np.random.get_state(),
            "torch": th.get_rng_state(),
            "random": random.getstate(),
            "action_space": copy.deepcopy(self.model.action_space.np_random),  # saved, but reseeded by load()
        }

    def _on_step(self) -> bool:
        return True


def _resume(algorithm: Any, folder: Path, normalize: bool, unsaved: dict[str, Any] | None) -> Any:
    env = unsaved["env"] if unsaved is not None else make_vec_env("CartPole-v1", n_envs=1, seed=1)
    if normalize:
        env = VecNormalize.load(str(folder / "vecnormalize.pkl"), env)
    model = algorithm.load(folder / "model.zip", env=env, teacher="dqn/CartPole-v1", force_reset=unsaved is None)
    model.load_replay_buffer(folder / "buffer.pkl")
    if unsaved is not None:
        np.random.set_state(unsaved["numpy"])
        th.set_rng_state(unsaved["torch"])
        random.setstate(unsaved["random"])
        model.action_space._np_random = unsaved["action_space"]
    return model


def _weights(model: Any) -> dict[str, th.Tensor]:
    return {key: value.clone() for key, value in model.policy.state_dict().items()}


@pytest.mark.parametrize("name", RUNS)
def test_resume_gives_the_uninterrupted_weights(name: str, tmp_path: Path) -> None:
    algorithm, kwargs, normalize = RUNS[name]
    snapshot = SnapshotBetweenRollouts(CHECKPOINT_AT, tmp_path)
    left_alone = algorithm("MlpPolicy", _env(normalize), teacher="dqn/CartPole-v1", **TINY, **kwargs)
    left_alone.learn(TOTAL, callback=snapshot)
    assert snapshot.taken_at is not None and snapshot.unsaved is not None

    resumed = _resume(algorithm, tmp_path, normalize, snapshot.unsaved)
    # What SB3 saves brings every counter and schedule back where it was.
    assert resumed.num_timesteps == snapshot.taken_at
    resumed.learn(TOTAL - snapshot.taken_at, reset_num_timesteps=False)
    assert resumed.num_timesteps == left_alone.num_timesteps == TOTAL
    assert resumed._n_updates == left_alone._n_updates
    expected, found = _weights(left_alone), _weights(resumed)
    for key in expected:
        assert th.equal(expected[key], found[key]), f"{key} differs from the uninterrupted run's"
    if normalize:
        assert np.array_equal(resumed.get_vec_normalize_env().obs_rms.mean, left_alone.get_vec_normalize_env().obs_rms.mean)


@pytest.mark.parametrize("name", RUNS)
def test_resume_restores_every_schedule_and_the_cache(name: str, tmp_path: Path) -> None:
    """What a user's resume (fresh env, no RNG state) gets back from the files alone."""
    algorithm, kwargs, normalize = RUNS[name]
    snapshot = SnapshotBetweenRollouts(CHECKPOINT_AT, tmp_path)
    model = algorithm("MlpPolicy", _env(normalize), teacher="dqn/CartPole-v1", **TINY, **kwargs)
    state: dict[str, Any] = {}

    class Record(BaseCallback):
        def _on_rollout_start(self) -> None:
            if snapshot.taken_at is not None and not state:
                state.update(_schedule_state(self.model))

        def _on_step(self) -> bool:
            return True

    model.learn(CHECKPOINT_AT + 50, callback=[snapshot, Record()])
    resumed = _resume(algorithm, tmp_path, normalize, None)
    assert _schedule_state(resumed) == state
    buffer, saved = resumed.replay_buffer, model.replay_buffer
    assert buffer.pos == state["buffer_pos"]
    rows = slice(0, buffer.pos)
    assert np.array_equal(buffer.observations[rows], saved.observations[rows])
    assert (saved.teacher_outputs is not None) == model.cache_teacher_outputs
    if model.cache_teacher_outputs:
        # The teacher-output cache is saved with the buffer, under the key of the teacher it was computed with (its
        # fingerprint), so the resumed run recomputes nothing for the same teacher. (PolicyDistill labels the newest
        # transitions lazily, when a batch first holds one: only those may wait, in either run.)
        assert buffer._outputs_key == saved._outputs_key and buffer.n_pending <= max(saved.n_pending, 8)
        rows = slice(0, min(buffer.pos - buffer.n_pending, saved.pos - saved.n_pending))
        for name, outputs in saved.teacher_outputs.items():
            assert np.array_equal(buffer.teacher_outputs[name][rows], outputs[rows])
    resumed.learn(TOTAL - resumed.num_timesteps, reset_num_timesteps=False)
    assert resumed.num_timesteps == TOTAL


def _schedule_state(model: Any) -> dict[str, Any]:
    state = {
        "num_timesteps": model.num_timesteps,
        "n_updates": model._n_updates,
        "progress": model._current_progress_remaining,
        "episodes": model._episode_num,
        "buffer_pos": model.replay_buffer.pos,
    }
    if isinstance(model, DistillDQN):
        state.update(exploration=model.exploration_rate, distill_coef=model.current_distill_coef())
    else:
        state.update(teacher_share=model.teacher_share())
    return state


# ------------------------------------------------------------------------------------ SIGKILL, then resume
KILL_TOTAL, SAVE_FREQ = 1_000, 250
FORK = multiprocessing.get_context("fork")


def _make_student(env: Any) -> PolicyDistill:
    return PolicyDistill(
        "MlpPolicy", env, teacher="dqn/CartPole-v1", distill_value_coef=0.0, learning_starts=100, buffer_size=5_000, seed=0
    )


def _train_with_checkpoints(folder: Path) -> None:
    model = _make_student(_env(True))
    checkpoints = CheckpointCallback(SAVE_FREQ, str(folder), save_replay_buffer=True, save_vecnormalize=True)
    model.learn(KILL_TOTAL, callback=checkpoints)


def newest_complete_checkpoint(folder: Path) -> tuple[int, dict[str, Path]]:
    """The newest step whose model, replay buffer and VecNormalize were all written (they are written in turn)."""
    steps = sorted(int(re.search(r"_(\d+)_steps", path.name).group(1)) for path in folder.glob("rl_model_*_steps.zip"))
    for step in reversed(steps):
        files = {
            "model": folder / f"rl_model_{step}_steps.zip",
            "buffer": folder / f"rl_model_replay_buffer_{step}_steps.pkl",
            "vecnormalize": folder / f"rl_model_vecnormalize_{step}_steps.pkl",
        }
        if all(path.exists() for path in files.values()):
            try:
                VecNormalize.load(str(files["vecnormalize"]), make_vec_env("CartPole-v1"))  # SB3 writes it in place
            except Exception:
                continue
            return step, files
    raise AssertionError(f"no complete checkpoint in {folder}")


def _score(model: Any, seed: int = 0) -> float:
    env = VecNormalize.load(str(model._saved_vecnormalize), make_vec_env("CartPole-v1", seed=seed))
    env.training, env.norm_reward = False, False
    mean, _ = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
    return float(mean)


@pytest.mark.learning
def test_sigkill_then_resume_finishes_and_scores_like_an_uninterrupted_run(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    child = FORK.Process(target=_train_with_checkpoints, args=(folder,), daemon=True)
    child.start()
    deadline = time.monotonic() + 120
    while not list(folder.glob("rl_model_vecnormalize_*_steps.pkl")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(0).uniform(0.0, 2.0))  # a random moment after the first checkpoint
    child.kill()
    child.join(10)
    assert child.exitcode is not None and child.exitcode < 0, "the run ended before it was killed"

    step, files = newest_complete_checkpoint(folder)
    env = VecNormalize.load(str(files["vecnormalize"]), make_vec_env("CartPole-v1", seed=1))
    resumed = PolicyDistill.load(files["model"], env=env, teacher="dqn/CartPole-v1")
    resumed.load_replay_buffer(files["buffer"])
    assert resumed.num_timesteps == step
    # CheckpointCallback saves inside the step (before SB3 stores that step's transition): one transition is lost.
    assert resumed.replay_buffer.pos == step - 1
    resumed.learn(KILL_TOTAL - step, reset_num_timesteps=False)
    assert resumed.num_timesteps == KILL_TOTAL
    resumed._saved_vecnormalize = tmp_path / "resumed_vecnormalize.pkl"
    resumed.get_vec_normalize_env().save(resumed._saved_vecnormalize)

    uninterrupted = _make_student(_env(True))
    uninterrupted.learn(KILL_TOTAL)
    uninterrupted._saved_vecnormalize = tmp_path / "uninterrupted_vecnormalize.pkl"
    uninterrupted.get_vec_normalize_env().save(uninterrupted._saved_vecnormalize)
    resumed_score, uninterrupted_score = _score(resumed), _score(uninterrupted)
    print(f"killed after step {step}: resumed {resumed_score:.1f}, uninterrupted {uninterrupted_score:.1f}")
    assert uninterrupted_score >= 450, "the budget is too small to compare scores"
    assert resumed_score >= 450
