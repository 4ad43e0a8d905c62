"""Export for deployment: the exported file acts exactly as ``predict(deterministic=True)``, preprocessing included."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill import DistillDQN, load_teacher
from sb3_distill.export import ExportError, export, load_exported, main
from env_helpers import visited_observations

TINY = dict(learning_starts=100, buffer_size=2_000, batch_size=32, policy_kwargs=dict(net_arch=[32, 32]), seed=0)


def onnx_actions(path: Path, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [inp.name for inp in session.get_inputs()] == ["observation"]
    actions, scores = session.run(None, {"observation": obs})
    return actions, scores


def torchscript_actions(path: Path, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    module = th.jit.load(str(path))
    with th.no_grad():
        actions, scores = module(th.as_tensor(obs))
    return actions.numpy(), scores.numpy()


RUNTIMES = {"onnx": onnx_actions, "torchscript": torchscript_actions}


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> tuple[DistillDQN, Path]:
    model = DistillDQN("MlpPolicy", "LunarLander-v3", teacher="dqn/LunarLander-v3", **TINY)
    model.learn(1_500)
    path = tmp_path_factory.mktemp("student") / "student.zip"
    model.save(path)
    return model, path


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_cli_export_matches_predict(student: tuple[DistillDQN, Path], tmp_path: Path, fmt: str) -> None:
    model, path = student
    out = tmp_path / f"student.{fmt}"
    assert main([str(path), "--format", fmt, "--out", str(out)]) == 0
    obs = visited_observations("LunarLander-v3", 1_000)
    actions, q_values = RUNTIMES[fmt](out, obs)
    expected, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (1_000,) and np.array_equal(actions, expected)
    with th.no_grad():
        th.testing.assert_close(th.as_tensor(q_values), model.q_net(th.as_tensor(obs)), rtol=1e-4, atol=1e-4)
    # Default output name beside the model, and no silent overwrite.
    assert main([str(path), "--format", fmt]) == 0 and path.with_suffix(".onnx" if fmt == "onnx" else ".pt").exists()
    assert main([str(path), "--format", fmt, "--out", str(out)]) == 2
    assert main([str(path), "--format", fmt, "--out", str(out), "--force"]) == 0


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_vecnormalize_statistics_are_inside(tmp_path: Path, fmt: str) -> None:
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=0), norm_reward=False)
    model = DistillDQN("MlpPolicy", env, teacher="dqn/CartPole-v1", **TINY)
    model.learn(1_500)
    model.save(tmp_path / "student.zip")
    env.save(str(tmp_path / "vecnormalize.pkl"))
    out = tmp_path / f"student.{fmt}"
    args = [
        str(tmp_path / "student.zip"),
        "--format",
        fmt,
        "--out",
        str(out),
        "--vecnormalize",
        str(tmp_path / "vecnormalize.pkl"),
    ]
    assert main(args) == 0
    raw = visited_observations("CartPole-v1", 1_000)
    actions, _ = RUNTIMES[fmt](out, raw)
    expected, _ = model.predict(env.normalize_obs(raw), deterministic=True)
    assert np.array_equal(actions, expected)
    # Without the statistics the file would be a different function of the raw observation.
    export(model.policy, tmp_path / f"plain.{fmt}", fmt)
    _, plain_scores = RUNTIMES[fmt](tmp_path / f"plain.{fmt}", raw)
    _, scores = RUNTIMES[fmt](out, raw)
    assert not np.allclose(plain_scores, scores)


def test_policy_distill_student_logits(tmp_path: Path) -> None:
    from sb3_distill import PolicyDistill

    model = PolicyDistill("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", learning_starts=100, batch_size=32, seed=0)
    model.learn(600)
    path = export(model, tmp_path / "student.onnx", "onnx")
    obs = visited_observations("CartPole-v1", 1_000)
    actions, logits = onnx_actions(path, obs)
    expected, _ = model.predict(obs, deterministic=True)
    assert np.array_equal(actions, expected)
    with th.no_grad():
        reference = model.policy.get_distribution(th.as_tensor(obs)).distribution.logits
    np.testing.assert_allclose(th.log_softmax(th.as_tensor(logits), dim=1).numpy(), reference.numpy(), rtol=1e-4, atol=1e-4)


def test_continuous_actions_and_zoo_run_folder(tmp_path: Path) -> None:
    sac = SAC("MlpPolicy", "Pendulum-v1", learning_starts=10**6, seed=0)
    path = export(sac, tmp_path / "sac.pt", "torchscript")
    obs = visited_observations("Pendulum-v1", 1_000)
    actions, _ = load_exported(path)(obs)
    expected, _ = sac.predict(obs, deterministic=True)
    np.testing.assert_allclose(actions, expected, atol=1e-5)
    # An rl-zoo3 run folder (the bundled teacher's) exports like a zip.
    teacher = load_teacher("dqn/Acrobot-v1")
    assert teacher.source_path is not None
    out = tmp_path / "acrobot.onnx"
    assert main([str(teacher.source_path.parent), "--out", str(out)]) == 0
    obs = visited_observations("Acrobot-v1", 1_000)
    assert np.array_equal(onnx_actions(out, obs)[0], teacher.predict(obs, deterministic=True)[0])


def test_missing_onnx_extra_names_it(
    student: tuple[DistillDQN, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = student
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    assert main([str(path), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    message = capsys.readouterr().err
    assert "sb3-distill[onnx]" in message and "onnxruntime" in message
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(ExportError, match=r"sb3-distill\[onnx\]"):
        export(path, tmp_path / "x.onnx", "onnx")
    # TorchScript needs no extra.
    assert main([str(path), "--format", "torchscript", "--out", str(tmp_path / "x.pt")]) == 0


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.zip")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "not_a_model.zip").write_text("hello")
    assert main([str(tmp_path / "not_a_model.zip")]) == 2
    with pytest.raises(ExportError, match="Unknown format"):
        export(tmp_path / "not_a_model.zip", tmp_path / "x.tflite", "tflite")


def test_sb3_distill_export_command(student: tuple[DistillDQN, Path], tmp_path: Path) -> None:
    from sb3_distill.cli import main as cli_main

    _, path = student
    assert cli_main(["export", str(path), "--format", "torchscript", "--out", str(tmp_path / "s.pt")]) == 0
    assert (tmp_path / "s.pt").stat().st_size > 0


@pytest.mark.parametrize(
    ("algo", "policy", "env_id", "kwargs"),
    [
        ("ars", "MlpPolicy", "CartPole-v1", {}),
        ("ars", "LinearPolicy", "Pendulum-v1", {}),
        ("ars", "MlpPolicy", "Pendulum-v1", {}),
        ("td3", "MlpPolicy", "Pendulum-v1", {"learning_starts": 10**6, "buffer_size": 10}),
        ("qrdqn", "MlpPolicy", "CartPole-v1", {"learning_starts": 10**6, "buffer_size": 10}),
        ("ppo", "MlpPolicy", "Pendulum-v1", {"n_steps": 16, "batch_size": 16}),
        (
            "ppo",
            "MlpPolicy",
            "Pendulum-v1",
            {"n_steps": 16, "batch_size": 16, "use_sde": True, "policy_kwargs": {"squash_output": True}},
        ),
    ],
)
def test_every_kind_of_policy_exports_its_predict(tmp_path: Path, algo: str, policy: str, env_id: str, kwargs: dict) -> None:
    from rl_zoo3.utils import ALGOS

    model = ALGOS[algo](policy, env_id, seed=0, **kwargs)
    path = export(model, tmp_path / "model.pt", "torchscript")
    obs = visited_observations(env_id, 200)
    actions, _ = load_exported(path)(obs)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(actions, expected, atol=1e-5)
