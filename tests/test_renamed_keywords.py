"""Renamed keywords (``policy_loss`` -> ``distill_loss``, ``value_coef`` -> ``distill_value_coef``) and values
(``distill_coef="auto_<λ0>"`` -> ``"qdagger_<λ0>"``): the old spellings keep working everywhere a user may have written them
(code, load(), saved models, YAML, Optuna trials), with a warning."""

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from sb3_distill import DistillDQN, DistillPPO, PolicyDistill
from sb3_distill.cli import main
from sb3_distill.zoo import check_hyperparams_keys
from sb3_distill.zoo.samplers import convert_distill_ppo_params, convert_policy_distill_params

PD_TINY = dict(learning_starts=50, buffer_size=500, batch_size=32, seed=0)
PPO_TINY = dict(n_steps=64, batch_size=32, n_epochs=1, distill_coef=1.0, seed=0)
CASES = {
    "PolicyDistill": (PolicyDistill, PD_TINY, {"policy_loss": "distill_loss", "value_coef": "distill_value_coef"}),
    "DistillPPO": (DistillPPO, PPO_TINY, {"policy_loss": "distill_loss"}),
}
# A value of each renamed keyword that differs from its default, so that a lost value shows
OLD_VALUES = {"policy_loss": "nll", "value_coef": 0.0}


@pytest.mark.parametrize("name", CASES)
def test_old_keyword_warns_and_sets_the_new_one(name):
    cls, tiny, renamed = CASES[name]
    old_kwargs = {old: OLD_VALUES[old] for old in renamed}
    with pytest.warns(FutureWarning) as warned:
        model = cls("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **old_kwargs, **tiny)
    messages = [str(warning.message) for warning in warned if warning.category is FutureWarning]
    for old, new in renamed.items():
        assert any(f"{old}= is now called {new}=" in message for message in messages)
        assert getattr(model, new) == OLD_VALUES[old] and old not in vars(model)
    assert model._terms[0].distill_loss == "nll"
    assert all(warning.filename == __file__ for warning in warned)  # the warning points at the user's line


@pytest.mark.parametrize("name", CASES)
def test_old_and_new_name_together_is_an_error_before_any_loading(name):
    cls, tiny, _ = CASES[name]
    # The teacher does not exist: the keyword error comes first, before anything is loaded
    with pytest.raises(TypeError, match=r"both policy_loss= and distill_loss=.*keep distill_loss= only"):
        cls("MlpPolicy", "CartPole-v1", teacher="dqn/NoSuchEnv-v0", policy_loss="kl", distill_loss="nll", **tiny)
    with pytest.raises(TypeError, match="keep distill_loss= only"):
        cls.load("no-such-file.zip", policy_loss="kl", distill_loss="nll")


def _save_with_old_names(model, path: Path, renamed: dict[str, str]) -> None:
    """Save, then rewrite the zip's "data" entry as a version before the rename wrote it (old attribute names)."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    data = json.loads(entries["data"])
    for old, new in renamed.items():
        data[old] = data.pop(new)
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for filename, content in entries.items():
            archive.writestr(filename, content)


@pytest.mark.parametrize("name", CASES)
def test_model_saved_before_the_rename_loads_and_keeps_learning(name, tmp_path):
    cls, tiny, renamed = CASES[name]
    new_kwargs = {new: OLD_VALUES[old] for old, new in renamed.items()}
    model = cls("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **new_kwargs, **tiny).learn(64)
    path = tmp_path / "old.zip"
    _save_with_old_names(model, path, renamed)
    assert "policy_loss" in json.loads(zipfile.ZipFile(path).read("data"))

    loaded = cls.load(path, env=model.get_env())  # the saved teacher spec resolves again
    for old, new in renamed.items():
        assert getattr(loaded, new) == OLD_VALUES[old] and old not in vars(loaded)
    assert loaded._terms[0].distill_loss == "nll"
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.num_timesteps == 128
    # Saved again, it has the new names only
    loaded.save(path)
    data = json.loads(zipfile.ZipFile(path).read("data"))
    assert "distill_loss" in data and "policy_loss" not in data

    # A keyword given to load() wins over the old zip's value, under either name
    _save_with_old_names(model, path, renamed)
    assert cls.load(path, env=model.get_env(), distill_loss="kl")._terms[0].distill_loss == "kl"
    with pytest.warns(FutureWarning, match="policy_loss= is now called distill_loss="):
        assert cls.load(path, env=model.get_env(), policy_loss="kl").distill_loss == "kl"


def _renamed_in(warned: pytest.WarningsRecorder) -> set[str]:
    """The old keyword names that the FutureWarnings of ``warned`` name."""
    messages = [str(warning.message) for warning in warned if warning.category is FutureWarning]
    return {message.split(": ", 1)[1].split("=", 1)[0] for message in messages}


def test_old_optuna_trial_and_yaml_keys_still_build_a_student():
    # The parameters of a trial of a study started before the rename
    old_trial = dict(batch_size_pow=5, learning_rate=1e-3, train_freq=1, subsample_steps=1, net_width=32, net_depth=1)
    old_trial.update(policy_loss="nll", value_distillation=True, value_coef=0.3, data_policy="student")
    kwargs = convert_policy_distill_params(old_trial)
    kwargs.pop("batch_size")
    check_hyperparams_keys("policy_distill", PolicyDistill, kwargs, "the trial")  # the old keys are known
    with pytest.warns(FutureWarning) as warned:
        model = PolicyDistill("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **kwargs, **PD_TINY)
    assert _renamed_in(warned) == {"policy_loss", "value_coef"}
    assert model.distill_loss == "nll" and model.distill_value_coef == 0.3


def test_old_yaml_entry_trains_with_sb3_distill_train(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SB3_DISTILL_ZOO", raising=False)
    entry = dict(teacher="dqn/CartPole-v1", policy="MlpPolicy", n_timesteps=100, policy_loss="nll", value_coef=0.0, **PD_TINY)
    entry.pop("seed")
    (tmp_path / "old.yml").write_text(yaml.safe_dump({"CartPole-v1": entry}))
    args = ["train", "--algo", "policy_distill", "--env", "CartPole-v1", "-conf", "old.yml"]
    with pytest.warns(FutureWarning) as warned:
        assert main([*args, "--seed", "1", "--eval-freq", "-1", "--num-threads", "1", "--verbose", "0"]) == 0
    assert _renamed_in(warned) == {"policy_loss", "value_coef"}
    student = PolicyDistill.load(tmp_path / "logs" / "policy_distill" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert student.distill_loss == "nll" and student.distill_value_coef == 0.0 and student.num_timesteps == 100


# ---------------------------------------------------------------------------------------------- renamed values
#: DistillPPO's distill_coef="auto_<λ0>" is QDagger's rule, now spelled as DistillDQN spells it (plain "auto" is the
#: rule with λ0 chosen from the teacher: not renamed)
OLD_COEFS = {"auto_1": ("qdagger_1", 1.0), "auto_0.3": ("qdagger_0.3", 0.3)}


@pytest.mark.parametrize("old", OLD_COEFS)
def test_old_distill_coef_spelling_warns_and_means_qdagger(old):
    new, initial = OLD_COEFS[old]
    kwargs = dict(PPO_TINY, distill_coef=old, reference_returns=(20.0, 500.0))
    with pytest.warns(FutureWarning, match=f"distill_coef={old!r} is now spelled distill_coef={new!r}") as warned:
        model = DistillPPO("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **kwargs)
    assert all(warning.filename == __file__ for warning in warned)  # the warning points at the user's line
    assert (model.distill_coef, model._coef_mode, model._coef_value) == (new, "qdagger", initial)
    # DistillDQN takes the same spellings (one distill_coef for both)
    with pytest.warns(FutureWarning, match="is now spelled"):
        dqn = DistillDQN("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", distill_coef=old, learning_starts=10)
    assert (dqn.distill_coef, dqn._coef_mode, dqn._coef_value) == (new, "qdagger", initial)


def test_model_saved_with_distill_coef_auto_loads_as_qdagger(tmp_path):
    kwargs = {**PPO_TINY, "distill_coef": "qdagger_0.5", "reference_returns": (20.0, 500.0)}
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **kwargs)
    model.learn(64)
    path = tmp_path / "old.zip"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    data = json.loads(entries["data"])
    assert data["distill_coef"] == "qdagger_0.5"
    data["distill_coef"] = "auto_0.5"  # as a version before the rename saved it
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for filename, content in entries.items():
            archive.writestr(filename, content)
    with pytest.warns(FutureWarning, match="'auto_0.5' is now spelled distill_coef='qdagger_0.5'"):
        loaded = DistillPPO.load(path, env=model.get_env())
    assert (loaded.distill_coef, loaded._coef_mode, loaded._coef_value) == ("qdagger_0.5", "qdagger", 0.5)
    loaded.learn(64, reset_num_timesteps=False)
    # load(path, distill_coef=<old spelling>) is renamed too
    with pytest.warns(FutureWarning, match="is now spelled"):
        assert DistillPPO.load(path, env=model.get_env(), distill_coef="auto_1").distill_coef == "qdagger_1"


def test_old_distill_ppo_trial_and_yaml_value_still_build_a_student(tmp_path, monkeypatch):
    # An Optuna trial of a study started before the rename: distill_coef_mode="auto"
    old_trial = dict(batch_size_pow=5, n_steps_pow=6, one_minus_gamma=0.02, one_minus_gae_lambda=0.05, learning_rate=1e-3)
    old_trial.update(ent_coef=0.0, clip_range=0.2, n_epochs=1, max_grad_norm=0.5, net_arch="tiny", activation_fn="tanh")
    old_trial.update(distill_coef_mode="auto", distill_coef_init=0.3)
    with pytest.warns(FutureWarning) as warned:
        kwargs = convert_distill_ppo_params(old_trial)
    assert kwargs["distill_coef"] == "qdagger_0.3"
    messages = " ".join(str(warning.message) for warning in warned)
    assert "distill_coef_mode= is now called distill_coef_rule=" in messages and "'auto' is now spelled" in messages
    # A YAML entry written before the rename trains with sb3-distill train (the value reaches DistillPPO's __init__)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SB3_DISTILL_ZOO", raising=False)
    entry = dict(teacher="dqn/CartPole-v1", policy="MlpPolicy", n_timesteps=64, distill_coef="auto_1", n_steps=64)
    entry.update(batch_size=32, n_epochs=1, reference_returns=[20.0, 500.0])  # nothing to measure
    (tmp_path / "old.yml").write_text(yaml.safe_dump({"CartPole-v1": entry}))
    args = ["train", "--algo", "distill_ppo", "--env", "CartPole-v1", "-conf", "old.yml", "--seed", "1"]
    with pytest.warns(FutureWarning, match="distill_coef='auto_1' is now spelled distill_coef='qdagger_1'"):
        assert main([*args, "--eval-freq", "-1", "--num-threads", "1", "--verbose", "0"]) == 0
    student = DistillPPO.load(tmp_path / "logs" / "distill_ppo" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert student.distill_coef == "qdagger_1" and student.num_timesteps == 64
