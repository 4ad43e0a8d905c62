"""The ``sb3-distill`` command: rl-zoo3's train/enjoy with our algorithms, packaged hyperparameters, bad input."""

import re
import shutil
import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import gymnasium as gym
import pytest
import yaml
from zoo_helpers import worker_env, write_run_folder

from sb3_distill import DistillDQN, DistillPPO, PolicyDistill
from sb3_distill.cli import main
from sb3_distill.teachers import BUNDLED_DIR

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--seed", "1", "--eval-freq", "-1", "--num-threads", "1", "--verbose", "0"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """rl-zoo3 writes logs/ in the working directory; no teacher may come from anywhere but the package."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SB3_DISTILL_ZOO", raising=False)
    monkeypatch.delenv("SB3_DISTILL_TRUST_REMOTE_CODE", raising=False)
    return tmp_path


def _run(args: list[str]) -> int:
    return main(args)


def test_train_enjoy_resume_distill_dqn(workdir, capsys):
    params = ["-params", "learning_starts:100", "buffer_size:1000", "train_freq:16", "gradient_steps:4"]
    assert _run(["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "-n", "400", *QUICK, *params]) == 0
    out = capsys.readouterr().out
    assert f"Loading hyperparameters from: {REPO / 'sb3_distill' / 'hyperparams' / 'distill_dqn.yml'}" in out
    run = workdir / "logs" / "distill_dqn" / "CartPole-v1_1"
    config = yaml.load((run / "CartPole-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert config["teacher"] == "dqn/CartPole-v1" and config["recipe"] == "policy_distillation"
    student = DistillDQN.load(run / "CartPole-v1.zip")
    assert student.teacher is None and student.teacher_specs == ["dqn/CartPole-v1"]
    assert student.num_timesteps == 400 and student.policy_kwargs["net_arch"] == [32, 32]

    # enjoy: the student plays with no teacher
    assert _run(["enjoy", "--algo", "distill_dqn", "--env", "CartPole-v1", "-f", "logs", "--no-render", "-n", "300"]) == 0
    assert "Mean reward" in capsys.readouterr().out

    # resume with -i: the teacher comes back from the YAML (the zip holds none)
    resumed = ["-i", str(run / "CartPole-v1.zip"), "-n", "200"]
    assert _run(["train", "--algo", "distill_dqn", "--env", "CartPole-v1", *resumed, *QUICK, *params]) == 0
    assert "Loading pretrained agent" in capsys.readouterr().out
    again = DistillDQN.load(workdir / "logs" / "distill_dqn" / "CartPole-v1_2" / "CartPole-v1.zip")
    assert again.num_timesteps >= 200 and again._n_updates > student._n_updates


def test_train_enjoy_plot_policy_distill(workdir, capsys, monkeypatch):
    params = ["-params", "learning_starts:50", "buffer_size:1000", "batch_size:64"]
    assert _run(["train", "--algo", "policy_distill", "--env", "Pendulum-v1", "-n", "200", *QUICK, *params]) == 0
    student = PolicyDistill.load(workdir / "logs" / "policy_distill" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert student.teachers == [] and student.num_timesteps == 200
    assert _run(["enjoy", "--algo", "policy_distill", "--env", "Pendulum-v1", "-f", "logs", "--no-render", "-n", "250"]) == 0
    assert "Mean reward" in capsys.readouterr().out

    # rl-zoo3's plot scripts read our logs
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: shown.append([line.get_ydata() for line in plt.gca().lines]))
    assert _run(["plot_train", "--algo", "policy_distill", "--env", "Pendulum-v1", "-f", "logs", "-w", "1"]) == 0
    assert len(shown) == 1 and len(shown[0]) == 1 and len(shown[0][0]) == 1  # one run, one 200-step episode
    plt.close("all")


@pytest.mark.parametrize(
    "spec",
    [str(BUNDLED_DIR / "dqn" / "CartPole-v1_1"), str(BUNDLED_DIR / "dqn" / "CartPole-v1_1" / "CartPole-v1.zip")],
    ids=["run-folder", "zip"],
)
def test_params_teacher_takes_any_spec_unquoted(workdir, spec):
    params = ["-params", f"teacher:{spec}", "learning_starts:100", "buffer_size:1000", "recipe:'policy_distillation'"]
    assert _run(["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "-n", "200", *QUICK, *params]) == 0
    student = DistillDQN.load(workdir / "logs" / "distill_dqn" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert student.teacher_specs == [spec] and student.recipe == "policy_distillation"


def test_stock_algorithm_uses_rl_zoo3_hyperparams(workdir, capsys):
    assert _run(["train", "--algo", "dqn", "--env", "CartPole-v1", "-n", "200", *QUICK, "-params", "learning_starts:50"]) == 0
    assert "rl_zoo3/hyperparams/dqn.yml" in capsys.readouterr().out
    assert (workdir / "logs" / "dqn" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()


# ---------------------------------------------------------------------------------------------- bad input
def test_unknown_algo(workdir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run(["train", "--algo", "distil_dqn", "--env", "CartPole-v1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'distil_dqn'" in err and "distill_dqn" in err and "policy_distill" in err


def _bad_input(args: list[str], capsys, workdir) -> str:
    assert _run(args) == 2
    assert not (workdir / "logs").exists() or not any((workdir / "logs").rglob("*.zip")), "bad input wrote a model"
    assert not list((workdir / "logs").rglob("config.yml")) if (workdir / "logs").exists() else True
    return capsys.readouterr().err


def test_yaml_without_the_env(workdir, capsys):
    err = _bad_input(["train", "--algo", "distill_dqn", "--env", "Pendulum-v1", *QUICK], capsys, workdir)
    assert "has no hyperparameters for Pendulum-v1" in err
    assert "CartPole-v1, Acrobot-v1, MountainCar-v0, LunarLander-v3" in err


def test_unknown_hyperparameter(workdir, capsys):
    args = ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", *QUICK, "-params", "learnin_rate:0.01"]
    err = _bad_input(args, capsys, workdir)
    assert "Unknown hyperparameter 'learnin_rate'" in err and "Did you mean 'learning_rate'?" in err


@pytest.mark.parametrize("spec", ["no/such/teacher.zip", "dqn/Pong-v5", "hub:sb3/dqn-CartPole-v1"])
def test_teacher_spec_that_does_not_resolve(workdir, capsys, spec):
    err = _bad_input(
        ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", *QUICK, "-params", f"teacher:{spec}"], capsys, workdir
    )
    assert f"The teacher of --algo distill_dqn --env CartPole-v1 ('{spec}')" in err


def test_teacher_error_fails_tuning_before_any_trial(workdir, capsys):
    args = [
        "train",
        "--algo",
        "distill_dqn",
        "--env",
        "CartPole-v1",
        "-optimize",
        "--storage",
        "study.log",
        "--study-name",
        "s",
    ]
    err = _bad_input([*args, *QUICK, "-params", "teacher:missing.zip"], capsys, workdir)
    assert "missing.zip" in err and not (workdir / "study.log").exists()


def test_unreachable_storage_fails_in_seconds(workdir, capsys):
    from test_zoo import _closed_port

    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/optuna"
    start = time.monotonic()
    err = _bad_input(
        ["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "-optimize", "--storage", url, *QUICK], capsys, workdir
    )
    assert "Cannot reach the Optuna storage" in err and time.monotonic() - start < 15


def test_trial_id_needs_a_stored_study(workdir, capsys):
    err = _bad_input(["train", "--algo", "distill_dqn", "--env", "CartPole-v1", "--trial-id", "0", *QUICK], capsys, workdir)
    assert "--storage and --study-name" in err


def test_unknown_command(capsys):
    assert main(["trian"]) == 2
    assert "Did you mean 'train'?" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- entry points
def test_demo_distills_and_prints_both(capsys):
    from sb3_distill import demo

    assert demo.main(["--timesteps", "300", "--eval-episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "Student: DistillDQN recipe='policy_distillation' trained for 300 env steps" in out
    assert "recipe='auto' chose 'policy_distillation': the teacher's return 500.0 reaches CartPole-v1's reward" in out
    assert re.search(r"^student +[\d.]+ ± [\d.]+ +1,282 ", out, re.MULTILINE)
    assert "Student size: 1.9% of the teacher." in out


def test_demo_subcommand_runs_the_demo(monkeypatch):
    calls = []
    fake = types.ModuleType("sb3_distill.demo")
    fake.main = lambda argv=None: calls.append(argv) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sb3_distill.demo", fake)
    assert main(["demo", "--timesteps", "10"]) == 3
    assert calls == [["--timesteps", "10"]]


def test_console_script_and_module():
    script = Path(sys.executable).with_name("sb3-distill")
    assert script.is_file(), "the console script is not installed: pip install -e ."
    help_text = subprocess.run(
        [script, "train", "--help"], capture_output=True, text=True, env=worker_env(), check=True
    ).stdout
    assert "usage: sb3-distill train" in help_text and "distill_dqn" in help_text and "--storage" in help_text
    version = subprocess.run([sys.executable, "-m", "sb3_distill", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("sb3-distill ")


def test_wheel_ships_the_hyperparams(tmp_path):
    """A non-editable install finds the packaged hyperparams: build the wheel from a copy of the sources."""
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(REPO / "sb3_distill", source / "sb3_distill", symlinks=True, ignore=ignore)
    shutil.copytree(REPO / "hyperparams", source / "hyperparams")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", source],
        capture_output=True, text=True, env=worker_env(),
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("sb3_distill-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for algo in ("distill_dqn", "policy_distill"):
        assert f"sb3_distill/hyperparams/{algo}.yml" in names
        assert (
            zipfile.ZipFile(wheel).read(f"sb3_distill/hyperparams/{algo}.yml")
            == (REPO / "hyperparams" / f"{algo}.yml").read_bytes()
        )
    assert "sb3_distill/teachers/bundled/dqn/LunarLander-v3_1/LunarLander-v3.zip" in names
    zoo_modules = ("registry", "samplers", "teacher_cache", "config", "storage", "tuning", "experiment")
    assert {f"sb3_distill/zoo/{module}.py" for module in zoo_modules} <= set(names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "sb3-distill = sb3_distill.cli:main" in entry_points


# ---------------------------------------------------------------------------------------------- the teacher's env
TIME_FEATURE = "sb3_contrib.common.wrappers.TimeFeatureWrapper"


def _time_feature_teacher(workdir: Path, wrapper: str = TIME_FEATURE) -> Path:
    """A PPO teacher of Pendulum-v1 trained (for this test: built) on a TimeFeatureWrapper, in rl-zoo3's layout."""
    from sb3_contrib.common.wrappers import TimeFeatureWrapper
    from stable_baselines3 import PPO

    teacher = PPO("MlpPolicy", TimeFeatureWrapper(gym.make("Pendulum-v1")), n_steps=64, seed=0, device="cpu")
    config = {"env_wrapper": wrapper, "n_timesteps": 1000.0, "policy": "MlpPolicy", "normalize": False}
    return write_run_folder(workdir / "teachers", "ppo", "Pendulum-v1", teacher, config)


PD_PARAMS = ["learning_starts:50", "buffer_size:500", "batch_size:32"]


def test_train_uses_the_teachers_wrappers(workdir, capsys):
    """The student's YAML entry sets no env_wrapper: it trains, is saved and plays on the teacher's TimeFeatureWrapper."""
    run = _time_feature_teacher(workdir)
    args = ["train", "--algo", "policy_distill", "--env", "Pendulum-v1", "-n", "100", *QUICK]
    assert _run([*args, "-params", f"teacher:{run}", *PD_PARAMS]) == 0
    assert f"Using the teacher's env_wrapper: '{TIME_FEATURE}'" in capsys.readouterr().out
    student_run = workdir / "logs" / "policy_distill" / "Pendulum-v1_1"
    config = yaml.load((student_run / "Pendulum-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert config["env_wrapper"] == TIME_FEATURE  # so that enjoy and -i rebuild the same env
    student = PolicyDistill.load(student_run / "Pendulum-v1.zip")
    assert student.observation_space.shape == (4,) and student.num_timesteps == 100  # 3 + the time feature
    assert _run(["enjoy", "--algo", "policy_distill", "--env", "Pendulum-v1", "-f", "logs", "--no-render", "-n", "50"]) == 0

    # The same wrapper in the YAML agrees with the teacher: nothing to say.
    same = ["-params", f"teacher:{run}", *PD_PARAMS, f"env_wrapper:'{TIME_FEATURE}'"]
    assert _run([*args, *same]) == 0


def test_student_and_teacher_wrappers_that_differ(workdir, capsys):
    run = _time_feature_teacher(workdir)
    other = "gymnasium.wrappers.ClipAction"
    args = ["train", "--algo", "policy_distill", "--env", "Pendulum-v1", *QUICK, "-params", f"teacher:{run}"]
    err = _bad_input([*args, f"env_wrapper:'{other}'"], capsys, workdir)
    assert f"The student's env_wrapper '{other}'" in err and f"differs from its teacher's '{TIME_FEATURE}'" in err
    assert str(run) in err and "Remove env_wrapper from the student's entry" in err


def test_teacher_wrapper_that_cannot_be_imported(workdir, capsys):
    run = _time_feature_teacher(workdir, wrapper="no_such_package.wrappers.TimeFeature")
    args = ["train", "--algo", "policy_distill", "--env", "Pendulum-v1", *QUICK, "-params", f"teacher:{run}"]
    err = _bad_input(args, capsys, workdir)
    assert "The env_wrapper 'no_such_package.wrappers.TimeFeature' (from the teacher's config.yml) cannot be imported" in err
    assert "No module named 'no_such_package'" in err


# ---------------------------------------------------------------------------------------------- -i with a replay buffer
@pytest.mark.parametrize(
    ("algo", "cls", "env_id", "params"),
    [
        ("distill_dqn", DistillDQN, "CartPole-v1", ["learning_starts:100", "buffer_size:1000", "train_freq:10"]),
        ("policy_distill", PolicyDistill, "Pendulum-v1", ["learning_starts:50", "buffer_size:1000", "batch_size:32"]),
    ],
)  # fmt: skip
def test_resume_with_the_replay_buffer(workdir, capsys, algo, cls, env_id, params):
    """rl-zoo3's --save-replay-buffer, then -i: the teacher comes back from the YAML, the buffer from replay_buffer.pkl."""
    common = ["train", "--algo", algo, "--env", env_id, *QUICK, "--save-replay-buffer", "-params", *params]
    assert _run([*common, "-n", "300"]) == 0
    first = workdir / "logs" / algo / f"{env_id}_1"
    assert (first / "replay_buffer.pkl").is_file()
    capsys.readouterr()

    assert _run([*common, "-n", "200", "-i", str(first / f"{env_id}.zip")]) == 0
    out = capsys.readouterr().out
    assert "Loading pretrained agent" in out and "Loading replay buffer" in out
    second = workdir / "logs" / algo / f"{env_id}_2"
    resumed = cls.load(second / f"{env_id}.zip")
    # rl-zoo3's -i calls learn(n) with SB3's default reset_num_timesteps=True: the count (and so the exploration
    # and distillation schedules) starts again; -n is the number of steps added.
    assert resumed.num_timesteps == 200
    resumed.load_replay_buffer(second / "replay_buffer.pkl")
    assert resumed.replay_buffer.size() == 500, "the first run's transitions were kept"
    assert cls.load(first / f"{env_id}.zip")._n_updates < resumed._n_updates


def test_train_distill_ppo(workdir, capsys):
    """The third algorithm through rl-zoo3: packaged hyperparams, the teacher re-resolved from the YAML on -i."""
    params = ["-params", "n_envs:1", "n_steps:64", "batch_size:32", "n_epochs:1"]
    assert _run(["train", "--algo", "distill_ppo", "--env", "CartPole-v1", "-n", "128", *QUICK, *params]) == 0
    assert "hyperparams/distill_ppo.yml" in capsys.readouterr().out
    run = workdir / "logs" / "distill_ppo" / "CartPole-v1_1" / "CartPole-v1.zip"
    student = DistillPPO.load(run)
    assert student.num_timesteps == 128 and student.teacher_specs == ["dqn/CartPole-v1"]
    resumed = ["-i", str(run), "-n", "64"]
    assert _run(["train", "--algo", "distill_ppo", "--env", "CartPole-v1", *resumed, *QUICK, *params]) == 0
    assert DistillPPO.load(workdir / "logs" / "distill_ppo" / "CartPole-v1_2" / "CartPole-v1.zip").num_timesteps == 64
