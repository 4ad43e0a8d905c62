"""load_teacher on real zoo files, every spec kind, and every bad input it must refuse clearly."""

import io
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from sb3_contrib import ARS, QRDQN, TQC, TRPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_distill import Teacher, load_teacher
from sb3_distill.errors import HubAccessError, IncompatibleTeacherError, TeacherLoadError, TeacherNotFoundError
from sb3_distill.teachers import count_acting_parameters, count_critic_parameters, reference_returns
from sb3_distill.teachers.legacy import canonical_env_id, legacy_env_ids

# (run folder, env, minimum mean return over 5 episodes): the scores the zoo published, with a margin.
ZOO_AGENTS = [
    ("dqn/CartPole-v1_1", "CartPole-v1", 500.0),
    ("qrdqn/CartPole-v1_1", "CartPole-v1", 500.0),
    ("ppo/CartPole-v1_1", "CartPole-v1", 500.0),
    ("dqn/MountainCar-v0_1", "MountainCar-v0", -120.0),
    ("ppo/MountainCar-v0_1", "MountainCar-v0", -130.0),
    ("sac/Pendulum-v1_1", "Pendulum-v1", -250.0),
]


@pytest.mark.parametrize(("run", "env_id", "score"), ZOO_AGENTS)
def test_zoo_agents_load_and_play_to_their_published_score(zoo_dir: Path, run: str, env_id: str, score: float) -> None:
    teacher = load_teacher(zoo_dir / run)
    assert teacher.env_id == env_id
    assert teacher.algo == run.split("/")[0]
    env = gym.make(env_id)
    env.reset(seed=0)
    mean, _ = evaluate_policy(teacher, env, n_eval_episodes=5)
    assert mean >= score


def test_vecnormalize_statistics_are_applied(zoo_dir: Path) -> None:
    """The zoo PPO MountainCar only works with its own observation statistics."""
    teacher = load_teacher(zoo_dir / "ppo/MountainCar-v0_1")
    assert teacher.obs_normalizer is not None
    env = gym.make("MountainCar-v0")
    env.reset(seed=0)
    with_stats, _ = evaluate_policy(teacher, env, n_eval_episodes=3)
    bare = Teacher(teacher.policy, algo="ppo", env_id="MountainCar-v0")
    without_stats, _ = evaluate_policy(bare, env, n_eval_episodes=3)
    assert with_stats > -130 and without_stats == -200


def test_teacher_interface_on_zoo_agents(zoo_dir: Path) -> None:
    obs = np.stack([gym.make("CartPole-v1").observation_space.sample() * 0.1 for _ in range(7)])
    dqn = load_teacher(zoo_dir / "dqn/CartPole-v1_1")
    qrdqn = load_teacher(zoo_dir / "qrdqn/CartPole-v1_1")
    ppo = load_teacher(zoo_dir / "ppo/CartPole-v1_1")
    for teacher in (dqn, qrdqn):
        q_values = teacher.q_values(obs)
        assert q_values.shape == (7, 2)
        th.testing.assert_close(teacher.action_logits(obs), q_values)
        th.testing.assert_close(teacher.values(obs), q_values.max(dim=1).values)
        probs = teacher.distribution(obs, temperature=2.0).distribution.probs
        th.testing.assert_close(probs, th.softmax(q_values / 2.0, dim=1))
        assert th.equal(teacher.actions(obs), q_values.argmax(dim=1))
    assert ppo.action_logits(obs).shape == (7, 2) and ppo.values(obs).shape == (7,)
    assert not ppo.has_q_values
    with pytest.raises(IncompatibleTeacherError, match="DQN or QR-DQN"):
        ppo.q_values(obs)
    # predict() = greedy action on raw observations, like SB3's
    actions, state = dqn.predict(obs)
    assert state is None and np.array_equal(actions, dqn.q_values(obs).argmax(dim=1).numpy())
    # frozen
    assert all(not p.requires_grad for p in dqn.policy.parameters())
    assert dqn.num_parameters == sum(p.numel() for p in dqn.policy.q_net.parameters())


def test_continuous_teacher_interface(zoo_dir: Path) -> None:
    sac = load_teacher(zoo_dir / "sac/Pendulum-v1_1")
    obs = np.stack([gym.make("Pendulum-v1").observation_space.sample() for _ in range(5)])
    actions = sac.actions(obs)
    assert actions.shape == (5, 1) and bool(((actions >= -2) & (actions <= 2)).all())
    np.testing.assert_allclose(sac.predict(obs)[0], actions.numpy(), rtol=1e-5)
    assert sac.values(obs).shape == (5,)
    assert sac.distribution(obs).distribution.mean.shape == (5, 1)
    with pytest.raises(IncompatibleTeacherError, match="discrete"):
        sac.action_logits(obs)


def test_zoo_id_lookup_order_and_renamed_ids(zoo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    teacher = load_teacher("dqn/CartPole-v1", zoo_dirs=[zoo_dir])
    assert teacher.source_path == (zoo_dir / "dqn/CartPole-v1_1/CartPole-v1.zip").resolve()
    # $SB3_DISTILL_ZOO is a path list
    monkeypatch.setenv("SB3_DISTILL_ZOO", f"{tmp_path / 'nothing'}:{zoo_dir}")
    assert load_teacher("qrdqn/CartPole-v1").algo == "qrdqn"
    # ./logs comes before the bundled teachers; the latest run wins
    monkeypatch.delenv("SB3_DISTILL_ZOO")
    for run in (1, 3):
        shutil.copytree(zoo_dir / "dqn/CartPole-v1_1", tmp_path / f"logs/dqn/CartPole-v1_{run}")
    assert load_teacher("dqn/CartPole-v1").source_path == (tmp_path / "logs/dqn/CartPole-v1_3/CartPole-v1.zip").resolve()
    # an agent saved under an old id is found under today's id
    assert canonical_env_id("LunarLander-v2") == "LunarLander-v3"
    assert legacy_env_ids("LunarLander-v3") == ["LunarLander-v3", "LunarLander-v2"]
    model = DQN("MlpPolicy", "LunarLander-v3", learning_starts=10**6, buffer_size=100)
    old = tmp_path / "old/dqn/LunarLander-v2_1"
    (old / "LunarLander-v2").mkdir(parents=True)
    model.save(old / "LunarLander-v2.zip")
    teacher = load_teacher("dqn/LunarLander-v3", env="LunarLander-v3", zoo_dirs=[tmp_path / "old"])
    assert teacher.env_id == "LunarLander-v3"


def test_bundled_teacher_resolves_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SB3_DISTILL_ZOO", raising=False)
    teacher = load_teacher("dqn/CartPole-v1", env="CartPole-v1")
    assert "bundled" in teacher.source
    mean, _ = evaluate_policy(teacher, gym.make("CartPole-v1"), n_eval_episodes=3)
    assert mean >= 475


@pytest.mark.parametrize(
    ("algo_class", "env_id", "kind", "kwargs"),
    [
        (A2C, "CartPole-v1", "actor_critic", {}),
        (TRPO, "CartPole-v1", "actor_critic", {}),
        (ARS, "CartPole-v1", "ars", {}),
        (QRDQN, "CartPole-v1", "quantile", {"learning_starts": 10**6}),
        (TD3, "Pendulum-v1", "td3", {"learning_starts": 10**6}),
        (DDPG, "Pendulum-v1", "td3", {"learning_starts": 10**6}),
        (TQC, "Pendulum-v1", "tqc", {"learning_starts": 10**6}),
        (SAC, "Pendulum-v1", "sac", {"learning_starts": 10**6}),
        (PPO, "Pendulum-v1", "actor_critic", {"use_sde": True}),
    ],
)
def test_every_algorithm_loads_from_its_zip(tmp_path: Path, algo_class: type, env_id: str, kind: str, kwargs: dict) -> None:
    model = algo_class("MlpPolicy", env_id, seed=0, **kwargs)
    model.save(tmp_path / "model.zip")
    teacher = load_teacher(tmp_path / "model.zip", env=env_id)
    assert teacher.kind == kind
    assert teacher.algo == algo_class.__name__.lower()
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    expected, _ = model.predict(obs, deterministic=True)
    got, _ = teacher.predict(obs, deterministic=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # the same model object works as a spec too
    assert load_teacher(model).kind == kind


def test_compact_zip_without_optimizer_loads(tmp_path: Path) -> None:
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=10**6)
    model.save(tmp_path / "full.zip")
    with zipfile.ZipFile(tmp_path / "full.zip") as source, zipfile.ZipFile(tmp_path / "compact.zip", "w") as target:
        for name in source.namelist():
            if "optimizer" not in name:
                target.writestr(name, source.read(name))
    teacher = load_teacher(tmp_path / "compact.zip")
    obs = np.zeros((1, 4), dtype=np.float32)
    th.testing.assert_close(teacher.q_values(obs), model.q_net(th.as_tensor(obs)))


# ------------------------------------------------------------------------------------------- Hugging Face
def _hand_built_hub_cache(cache: Path, zoo_dir: Path, repo: str = "sb3/dqn-CartPole-v1") -> Path:
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    shutil.copy(zoo_dir / "dqn/CartPole-v1_1/CartPole-v1.zip", snapshot / f"{repo.split('/')[1]}.zip")
    shutil.copy(zoo_dir / "dqn/CartPole-v1_1/CartPole-v1/config.yml", snapshot / "config.yml")
    return snapshot


def test_hub_spec_needs_permission_and_uses_the_cache(zoo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("SB3_DISTILL_TRUST_REMOTE_CODE", raising=False)
    snapshot = _hand_built_hub_cache(tmp_path / "hub", zoo_dir)
    with pytest.raises(HubAccessError, match="trust_remote_code=True"):
        load_teacher("hub:sb3/dqn-CartPole-v1")
    teacher = load_teacher("hub:sb3/dqn-CartPole-v1", trust_remote_code=True)
    assert teacher.env_id == "CartPole-v1" and teacher.source_path == (snapshot / "dqn-CartPole-v1.zip").resolve()
    monkeypatch.setenv("SB3_DISTILL_TRUST_REMOTE_CODE", "1")
    assert load_teacher("hub:sb3/dqn-CartPole-v1").algo == "dqn"
    # a zoo id finds the local cache too (before the bundled teachers)
    monkeypatch.chdir(tmp_path)
    assert load_teacher("dqn/CartPole-v1").source_path == (snapshot / "dqn-CartPole-v1.zip").resolve()


def test_hub_offline_fails_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    # nothing listens on this loopback port: the Hub is "offline"
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(HubAccessError, match="not reachable"):
        load_teacher("hub:sb3/dqn-CartPole-v1", trust_remote_code=True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubAccessError, match="HF_HUB_OFFLINE"):
        load_teacher("hub:sb3/dqn-CartPole-v1", trust_remote_code=True)
    assert time.monotonic() - start < 10


# ------------------------------------------------------------------------------------------- bad input
def test_missing_path() -> None:
    with pytest.raises(TeacherNotFoundError, match="does not exist"):
        load_teacher("no/such/teacher.zip")
    with pytest.raises(TeacherNotFoundError, match="neither an existing file"):
        load_teacher("not a spec")


def test_not_a_zip_and_truncated_zip(zoo_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "teacher.zip").write_text("hello")
    with pytest.raises(TeacherLoadError, match="not a zip file"):
        load_teacher(tmp_path / "teacher.zip")
    data = (zoo_dir / "dqn/CartPole-v1_1/CartPole-v1.zip").read_bytes()
    (tmp_path / "truncated.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(TeacherLoadError, match=r"truncated|damaged"):
        load_teacher(tmp_path / "truncated.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "not a model")
    with pytest.raises(TeacherLoadError, match="not an SB3 model"):
        load_teacher(tmp_path / "other.zip")


def test_unknown_zoo_id_lists_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TeacherNotFoundError) as error:
        load_teacher("dqn/NoSuchEnv-v0", zoo_dirs=[tmp_path / "mine"])
    message = str(error.value)
    for place in ("mine/dqn", "logs/dqn", "rl-trained-agents/dqn", "Hugging Face cache", "Hub", "bundled teachers"):
        assert place in message


def test_space_mismatch(zoo_dir: Path) -> None:
    with pytest.raises(IncompatibleTeacherError, match="observation space"):
        load_teacher(zoo_dir / "dqn/CartPole-v1_1", env="Acrobot-v1")
    with pytest.raises(IncompatibleTeacherError, match="action space"):
        load_teacher(zoo_dir / "dqn/MountainCar-v0_1", env=gym.make("MountainCarContinuous-v0"))


def test_zoo_id_with_hub_allowed_but_offline_falls_back_to_bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    start = time.monotonic()
    teacher = load_teacher("dqn/CartPole-v1", trust_remote_code=True)
    assert "bundled" in teacher.source and time.monotonic() - start < 10
    with pytest.raises(TeacherNotFoundError, match=r"Hub sb3/dqn-NoSuchEnv-v0: .*not reachable"):
        load_teacher("dqn/NoSuchEnv-v0", trust_remote_code=True)


def test_algo_can_be_forced(zoo_dir: Path) -> None:
    assert load_teacher(zoo_dir / "ppo/CartPole-v1_1/CartPole-v1.zip", algo="a2c").algo == "a2c"


def test_a_live_model_is_snapshotted_not_frozen() -> None:
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=0, buffer_size=500, seed=0)
    teacher = load_teacher(model)
    assert all(p.requires_grad for p in model.policy.parameters())
    before = [p.clone() for p in teacher.policy.parameters()]
    model.learn(200)
    assert all(th.equal(a, b) for a, b in zip(before, teacher.policy.parameters(), strict=True))
    assert not all(th.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))


# ------------------------------------------------------------------------------------------- old files
def _rewrite_policy_weights(zip_path: Path, rename: Callable[[dict[str, th.Tensor]], dict[str, th.Tensor]]) -> None:
    """Rewrite the ``policy.pth`` entry of an SB3 zip, as an older library version would have saved it."""
    with zipfile.ZipFile(zip_path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    weights = th.load(io.BytesIO(entries["policy.pth"]), weights_only=True)
    buffer = io.BytesIO()
    th.save(rename(weights), buffer)
    entries["policy.pth"] = buffer.getvalue()
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def test_ars_linear_policy_saved_by_old_sb3_contrib(tmp_path: Path) -> None:
    """sb3-contrib < 1.7 saved ARS's linear policy as ``action_net.weight``; today's key is ``action_net.0.weight``."""
    model = ARS("LinearPolicy", "CartPole-v1", seed=0)
    model.save(tmp_path / "ars.zip")
    _rewrite_policy_weights(
        tmp_path / "ars.zip",
        lambda weights: {key.replace("action_net.0.", "action_net."): value for key, value in weights.items()},
    )
    with zipfile.ZipFile(tmp_path / "ars.zip") as archive:
        assert "action_net.weight" in th.load(io.BytesIO(archive.read("policy.pth")), weights_only=True)
    teacher = load_teacher(tmp_path / "ars.zip")
    obs = np.stack([gym.make("CartPole-v1").observation_space.sample() for _ in range(16)])
    np.testing.assert_array_equal(teacher.predict(obs)[0], model.predict(obs, deterministic=True)[0])
    th.testing.assert_close(teacher.action_logits(obs), model.policy.action_net(th.as_tensor(obs)))


def test_actor_critic_saved_before_shared_extractor_aliases(tmp_path: Path) -> None:
    """SB3 < 1.7 saved a shared features extractor once, without its pi_/vf_features_extractor aliases."""
    from stable_baselines3.common.envs import FakeImageEnv

    model = PPO("CnnPolicy", FakeImageEnv(screen_height=40, screen_width=40), n_steps=16, batch_size=16, seed=0)
    model.save(tmp_path / "ppo.zip")
    _rewrite_policy_weights(
        tmp_path / "ppo.zip",
        lambda weights: {key: value for key, value in weights.items() if not key.startswith(("pi_features", "vf_features"))},
    )
    teacher = load_teacher(tmp_path / "ppo.zip")
    obs = np.stack([model.observation_space.sample() for _ in range(4)])
    np.testing.assert_array_equal(teacher.predict(obs)[0], model.predict(obs, deterministic=True)[0])
    th.testing.assert_close(teacher.values(obs), model.policy.predict_values(model.policy.obs_to_tensor(obs)[0]).flatten())


# ------------------------------------------------------------------------------------------- the teacher's env
def test_make_env_rebuilds_wrappers_frame_stack_and_env_kwargs(tmp_path: Path) -> None:
    from sb3_contrib.common.wrappers import TimeFeatureWrapper
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    # A run as rl-zoo3 records it: hyperparameters in config.yml, the env's arguments in args.yml.
    run = tmp_path / "sac/Pendulum-v1_1"
    (run / "Pendulum-v1").mkdir(parents=True)
    config = {"env_wrapper": "sb3_contrib.common.wrappers.TimeFeatureWrapper", "frame_stack": 2, "n_timesteps": 1000}
    (run / "Pendulum-v1/config.yml").write_text(yaml.dump(config))
    (run / "Pendulum-v1/args.yml").write_text(yaml.dump({"env": "Pendulum-v1", "env_kwargs": {"g": 9.0}}))
    env = VecFrameStack(make_vec_env("Pendulum-v1", wrapper_class=TimeFeatureWrapper, env_kwargs={"g": 9.0}), 2)
    model = SAC("MlpPolicy", env, learning_starts=10**6, buffer_size=10, policy_kwargs={"net_arch": [8]}, seed=0)
    model.save(run / "Pendulum-v1.zip")

    teacher = load_teacher(run)
    assert teacher.env_id == "Pendulum-v1" and teacher.env_kwargs == {"g": 9.0}
    student_env = teacher.make_env(n_envs=2, seed=0)
    assert isinstance(student_env, VecFrameStack) and student_env.num_envs == 2
    assert student_env.observation_space.shape == teacher.observation_space.shape == (8,)
    assert student_env.env_is_wrapped(TimeFeatureWrapper) == [True, True]
    assert student_env.get_attr("g") == [9.0, 9.0]
    assert teacher.make_env(g=8.0).get_attr("g") == [8.0]  # keyword arguments override the teacher's
    obs = student_env.reset()
    np.testing.assert_allclose(teacher.predict(obs)[0], model.predict(obs, deterministic=True)[0], rtol=1e-5)


def test_make_env_reproduces_a_classic_teacher_and_plain_models(zoo_dir: Path) -> None:
    teacher = load_teacher(zoo_dir / "dqn/CartPole-v1_1")
    mean, _ = evaluate_policy(teacher, teacher.make_env(seed=0), n_eval_episodes=2)
    assert mean == 500.0
    # A teacher without a run folder (here a live model) gets its plain env.
    model = DQN("MlpPolicy", "Acrobot-v1", learning_starts=10**6, buffer_size=100)
    env = load_teacher(model).make_env(seed=0)
    assert env.get_attr("spec")[0].id == "Acrobot-v1" and env.observation_space.shape == (6,)


def test_make_env_bad_input(zoo_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "dqn/CartPole-v1_1"
    shutil.copytree(zoo_dir / "dqn/CartPole-v1_1", run)
    config = yaml.load((run / "CartPole-v1/config.yml").read_text(), Loader=yaml.UnsafeLoader)
    (run / "CartPole-v1/config.yml").write_text(yaml.dump({**config, "env_wrapper": [{"no_such_package.Wrapper": {"k": 1}}]}))
    teacher = load_teacher(run)  # the env exists: the wrapper is only needed to build it
    with pytest.raises(IncompatibleTeacherError, match=r"env_wrapper no_such_package\.Wrapper cannot be imported"):
        teacher.make_env()
    with pytest.raises(IncompatibleTeacherError, match="'NoSuchEnv-v0' is not registered"):
        Teacher(teacher.policy, env_id="NoSuchEnv-v0").make_env()
    with pytest.raises(IncompatibleTeacherError, match="has none"):
        Teacher(teacher.policy).make_env()


def test_reference_returns_and_acting_parameters(zoo_dir: Path) -> None:
    teacher = load_teacher(zoo_dir / "dqn/CartPole-v1_1")
    random_returns, teacher_returns = reference_returns(teacher, teacher.make_env(), n_episodes=3, seed=0)
    assert len(random_returns) == len(teacher_returns) == 3 and teacher_returns == [500.0] * 3
    assert 8 < np.mean(random_returns) < 60
    assert teacher.reference_returns(n_episodes=3) == (float(np.mean(random_returns)), 500.0)
    # One count of the network that acts, for teachers and students alike.
    assert count_acting_parameters(teacher.policy) == teacher.num_parameters
    sac = SAC("MlpPolicy", "Pendulum-v1", learning_starts=10**6, buffer_size=10)
    assert count_acting_parameters(sac) == sum(p.numel() for p in sac.actor.parameters())
    assert count_critic_parameters(sac) == sum(p.numel() for p in sac.critic.parameters())
    ppo = PPO("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16)
    value_part = ppo.policy.mlp_extractor.value_net, ppo.policy.value_net
    critic = sum(p.numel() for module in value_part for p in module.parameters())
    assert count_critic_parameters(ppo) == critic
    assert count_acting_parameters(ppo) == sum(p.numel() for p in ppo.policy.parameters()) - critic
    assert count_critic_parameters(teacher.policy) == 0


def test_normalized_then_stacked_observations(tmp_path: Path) -> None:
    """rl-zoo3 normalizes each frame, then stacks: the teacher normalizes a raw stacked observation frame by frame."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    run = tmp_path / "sac/Pendulum-v1_1"
    (run / "Pendulum-v1").mkdir(parents=True)
    (run / "Pendulum-v1/config.yml").write_text(yaml.dump({"normalize": True, "frame_stack": 3}))
    normalized = VecNormalize(make_vec_env("Pendulum-v1", seed=0))
    normalized.reset()
    for _ in range(50):  # statistics that differ from the identity
        normalized.step(np.array([normalized.action_space.sample()]))
    normalized.save(str(run / "Pendulum-v1/vecnormalize.pkl"))
    model = SAC(
        "MlpPolicy", VecFrameStack(normalized, 3), learning_starts=10**6, buffer_size=10, policy_kwargs={"net_arch": [8]}
    )
    model.save(run / "Pendulum-v1.zip")

    teacher = load_teacher(run)
    frames = np.stack([gym.make("Pendulum-v1").observation_space.sample() for _ in range(3)])  # three raw frames
    assert teacher.make_env().observation_space.shape == (9,)
    stacked_raw = frames.reshape(1, -1)
    expected = np.concatenate([normalized.normalize_obs(frame) for frame in frames]).reshape(1, -1)
    np.testing.assert_allclose(teacher.obs_to_tensor(stacked_raw).numpy(), expected, rtol=1e-5)
    with pytest.raises(IncompatibleTeacherError, match="do not belong together"):
        Teacher(teacher.policy, obs_normalizer=normalized)
