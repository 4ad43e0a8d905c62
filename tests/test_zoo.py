"""rl-zoo3 registration, samplers and converters, packaged hyperparameters, and the checks of bad input (in process)."""

import socket
import time
from pathlib import Path

import optuna
import pytest
import yaml
from rl_zoo3 import hyperparams_opt, utils
from stable_baselines3 import PPO, TD3

from sb3_distill import DistillDQN, DistillPPO, PolicyDistill, load_teacher
from sb3_distill.cli import quote_teacher_specs
from sb3_distill.errors import TeacherNotFoundError
from sb3_distill.distill_dqn.recipes import RECIPES
from sb3_distill.zoo import (
    ALGO_NAMES,
    CONVERTERS,
    HYPERPARAMS_DIR,
    SAMPLERS,
    ConfigError,
    StorageError,
    cached_teacher,
    check_hyperparams_file,
    check_hyperparams_keys,
    open_storage,
    register,
    tuning_with,
)

ENVS = {
    "distill_dqn": ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3"],
    "policy_distill": ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3", "Pendulum-v1"],
}
CLASSES = {"distill_dqn": DistillDQN, "policy_distill": PolicyDistill}
#: Entries whose teachers come from the user's zoo folders (tested in tests/test_policy_distill_zoo.py).
NOT_BUNDLED = {"policy_distill": ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5"]}


def test_register_is_idempotent():
    stock = set(utils.ALGOS)
    assert register() == list(ALGO_NAMES) == ["distill_dqn", "policy_distill", "distill_ppo"]
    sizes = (len(utils.ALGOS), len(hyperparams_opt.HYPERPARAMS_SAMPLER), len(hyperparams_opt.HYPERPARAMS_CONVERTER))
    assert register() == list(ALGO_NAMES)
    assert sizes == (len(utils.ALGOS), len(hyperparams_opt.HYPERPARAMS_SAMPLER), len(hyperparams_opt.HYPERPARAMS_CONVERTER))
    assert utils.ALGOS["distill_dqn"] is DistillDQN and utils.ALGOS["policy_distill"] is PolicyDistill
    assert {"dqn", "ppo", "sac", "qrdqn"} <= set(utils.ALGOS) and stock <= set(utils.ALGOS)
    assert utils.ALGOS["distill_ppo"] is DistillPPO
    for name in ALGO_NAMES:
        assert hyperparams_opt.HYPERPARAMS_SAMPLER[name] is SAMPLERS[name]
        assert hyperparams_opt.HYPERPARAMS_CONVERTER[name] is CONVERTERS[name]


def _sample(algo: str, n_trials: int, seed: int = 0) -> list[tuple[optuna.trial.FrozenTrial, dict]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    sampled = {}

    def objective(trial: optuna.Trial) -> float:
        sampled[trial.number] = SAMPLERS[algo](trial, 1, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
        return 0.0

    study.optimize(objective, n_trials=n_trials)
    return [(trial, sampled[trial.number]) for trial in study.trials]


@pytest.mark.parametrize("algo", ["distill_dqn", "policy_distill"])
def test_converter_rebuilds_every_sampled_trial(algo):
    trials = _sample(algo, 60)
    for trial, sampled in trials:
        # What --trial-id N runs is exactly what trial N ran.
        assert CONVERTERS[algo](trial.params) == sampled
        check_hyperparams_keys(algo, CLASSES[algo], sampled, "the sampler")
        width, depth = trial.params["net_width"], trial.params["net_depth"]
        assert sampled["policy_kwargs"]["net_arch"] == [width] * depth
        assert sampled["gradient_steps"] >= 1 and sampled["batch_size"] == 2 ** trial.params["batch_size_pow"]
    key = "recipe" if algo == "distill_dqn" else "data_policy"
    assert len({trial.params[key] for trial, _ in trials}) >= 3, "the search space is not explored"
    if algo == "distill_dqn":
        assert {*RECIPES, "custom"} == {trial.params["recipe"] for trial, _ in trials}
        assert all(0.97 <= sampled["gamma"] < 1 for _, sampled in trials)


def test_distill_ppo_sampler_builds_distill_ppo():
    """rl-zoo3 tunes DistillPPO with its own sampler (rl-zoo3's PPO sampler and λ_t): a sampled point builds a model."""
    trials = _sample("distill_ppo", 12)
    for trial, sampled in trials:
        assert CONVERTERS["distill_ppo"](trial.params) == sampled
        check_hyperparams_keys("distill_ppo", DistillPPO, sampled, "the sampler")
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", device="cpu", **trials[0][1])
    model.env.close()


def _policy_only_teacher():
    return load_teacher(PPO("MlpPolicy", "CartPole-v1", n_steps=64, device="cpu"))


@pytest.mark.parametrize(
    ("algo", "env_id", "make_teacher"),
    [
        ("distill_dqn", "CartPole-v1", lambda: load_teacher("dqn/CartPole-v1")),
        ("distill_dqn", "CartPole-v1", _policy_only_teacher),
        ("policy_distill", "CartPole-v1", _policy_only_teacher),
        ("policy_distill", "Pendulum-v1", lambda: load_teacher("sac/Pendulum-v1")),
        ("policy_distill", "Pendulum-v1", lambda: load_teacher(TD3("MlpPolicy", "Pendulum-v1", device="cpu"))),
    ],
    ids=["dqn-teacher", "ppo-teacher", "pd-ppo-teacher", "pd-sac-teacher", "pd-td3-teacher"],
)
def test_every_sampled_trial_fits_the_teacher(algo, env_id, make_teacher):
    """The samplers only propose what the study's teacher supports: every sampled point builds a model."""
    teacher = make_teacher()
    with tuning_with([teacher]):
        trials = _sample(algo, 25, seed=1)
    for _, sampled in trials:
        model = CLASSES[algo]("MlpPolicy", env_id, teacher=teacher, buffer_size=500, device="cpu", **sampled)
        model.env.close()
    params = [trial.params for trial, _ in trials]
    if not teacher.has_q_values and algo == "distill_dqn":
        assert all(p["recipe"] != "teacher_td_reverse_kl" and p.get("td_target") != "teacher" for p in params)
        assert all(p.get("distill_loss") != "mse" for p in params)
    if algo == "policy_distill" and not teacher.has_distribution:
        assert all(p["distill_loss"] != "kl" for p in params)


def test_teachers_are_loaded_once_per_process():
    assert cached_teacher("dqn/CartPole-v1") is cached_teacher("dqn/CartPole-v1")
    assert cached_teacher("dqn/CartPole-v1") is not cached_teacher("dqn/Acrobot-v1")


@pytest.mark.parametrize("algo", ["distill_dqn", "policy_distill"])
def test_packaged_hyperparams_resolve_to_bundled_teachers(algo, tmp_path, monkeypatch):
    """Offline on a fresh machine: every entry names a bundled teacher that fits the env, and builds a student."""
    monkeypatch.chdir(tmp_path)  # no ./logs to find a teacher in
    monkeypatch.delenv("SB3_DISTILL_ZOO", raising=False)
    monkeypatch.delenv("SB3_DISTILL_TRUST_REMOTE_CODE", raising=False)
    path = HYPERPARAMS_DIR / f"{algo}.yml"
    entries = yaml.safe_load(path.read_text())
    assert sorted(entries) == sorted(ENVS[algo] + NOT_BUNDLED.get(algo, []))
    entries = {env_id: entry for env_id, entry in entries.items() if env_id in ENVS[algo]}
    for env_id, entry in entries.items():
        teacher = load_teacher(entry["teacher"], env=env_id)
        assert "bundled" in teacher.source, teacher.source
        kwargs = {key: value for key, value in entry.items() if key != "n_timesteps"}
        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"])
        check_hyperparams_keys(algo, CLASSES[algo], kwargs, str(path))
        model = CLASSES[algo](env=env_id, **{**kwargs, "buffer_size": 500}, device="cpu")
        assert model.teacher is not None
        model.env.close()


def test_yaml_without_the_env_lists_the_envs_it_has():
    with pytest.raises(ConfigError, match=r"no hyperparameters for Pendulum-v1.*CartPole-v1, Acrobot-v1, MountainCar-v0"):
        check_hyperparams_file(str(HYPERPARAMS_DIR / "distill_dqn.yml"), "Pendulum-v1", "distill_dqn")
    with pytest.raises(ConfigError, match="-conf"):
        check_hyperparams_file("missing.yml", "CartPole-v1", "distill_dqn")
    check_hyperparams_file(str(HYPERPARAMS_DIR / "policy_distill.yml"), "Pendulum-v1", "policy_distill")


def test_unknown_hyperparameter_names_the_closest_key():
    with pytest.raises(ConfigError, match=r"Unknown hyperparameter 'temprature'.*Did you mean 'temperature'\?"):
        check_hyperparams_keys("distill_dqn", DistillDQN, {"temprature": 2.0}, "x.yml")
    with pytest.raises(ConfigError, match="--seed"):
        check_hyperparams_keys("distill_dqn", DistillDQN, {"seed": 2}, "x.yml")
    check_hyperparams_keys("distill_dqn", DistillDQN, {"temperature": 2.0, "n_timesteps": 5, "normalize": True}, "x.yml")


def test_unresolvable_teacher_spec():
    with pytest.raises(TeacherNotFoundError):
        cached_teacher("no/such/teacher.zip")


def test_storage_must_be_a_journal_file_or_a_url(tmp_path):
    with pytest.raises(StorageError, match=r"\.log"):
        open_storage("study.db")
    journal = open_storage(str(tmp_path / "sub" / "study.log"))
    assert isinstance(journal, optuna.storages.JournalStorage)


def test_unreachable_storage_fails_in_seconds(monkeypatch):
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(StorageError, match=r"Cannot reach the Optuna storage postgresql://me:\*\*\*@127\.0\.0\.1"):
        open_storage(f"postgresql://me:secret@127.0.0.1:{port}/optuna")
    assert time.monotonic() - start < 10


def test_silent_storage_server_times_out(monkeypatch):
    """A server that accepts the connection and never answers: the connect timeout, not a hang."""
    monkeypatch.setenv("SB3_DISTILL_STORAGE_TIMEOUT", "2")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        start = time.monotonic()
        with pytest.raises(StorageError, match="timeout"):
            open_storage(f"postgresql://me@127.0.0.1:{silent.getsockname()[1]}/optuna")
        assert time.monotonic() - start < 8


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_teacher_specs_need_no_python_quotes():
    args = ["--algo", "distill_dqn", "-params", "teacher:dqn/CartPole-v1", "learning_starts:100", "--seed", "1"]
    assert quote_teacher_specs(args)[3] == "teacher:'dqn/CartPole-v1'"
    kept = ["-params", "teacher:\"'x.zip'\"", "teacher:['dqn/CartPole-v1', 'ppo/CartPole-v1']"]
    assert quote_teacher_specs(kept) == kept
    path = str(Path("logs") / "dqn" / "CartPole-v1_1")
    assert quote_teacher_specs(["--hyperparams", f"teacher:{path}"])[1] == f"teacher:{path!r}"
    assert quote_teacher_specs(["--env-kwargs", "teacher:x"]) == ["--env-kwargs", "teacher:x"]
