"""
Compatibility with old SB3 files: models pickled with ``gym`` (not ``gymnasium``) and renamed env ids.

The public rl-trained-agents collection and the ``sb3/`` Hub organisation hold zips and
``vecnormalize.pkl`` files pickled with OpenAI ``gym``. Unpickling them imports ``gym.spaces.box`` and
friends; :func:`legacy_gym_modules` resolves those imports to the matching ``gymnasium`` modules while
the file is read, without installing ``gym`` nor leaving aliases behind.
"""

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType

# Ids whose environment was renamed or re-versioned since the zoo agents were trained (same task, same spaces).
# Other versions are never substituted here: ``envs.resolve_env_id`` does it, only for ids that cannot be made
# any more and only with a version that gives the agent's spaces.
ENV_ID_RENAMES: dict[str, str] = {
    "LunarLander-v2": "LunarLander-v3",
    "LunarLanderContinuous-v2": "LunarLanderContinuous-v3",
    "BipedalWalker-v2": "BipedalWalker-v3",
    "BipedalWalkerHardcore-v2": "BipedalWalkerHardcore-v3",
    "CarRacing-v0": "CarRacing-v3",
    "CarRacing-v1": "CarRacing-v3",
    "CarRacing-v2": "CarRacing-v3",
    "Pendulum-v0": "Pendulum-v1",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass


class _GymToGymnasiumFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "gym" and not fullname.startswith("gym."):
            return None
        target_name = "gymnasium" + fullname[len("gym") :]
        if importlib.util.find_spec(target_name) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(target_name))


def _gym_installed() -> bool:
    spec = importlib.util.find_spec("gym")
    return spec is not None and not isinstance(spec.loader, _AliasLoader)


@contextlib.contextmanager
def legacy_gym_modules() -> Iterator[None]:
    """
    Within this context, ``import gym.X`` yields ``gymnasium.X`` (unless the real ``gym`` is installed).

    Used only around unpickling of old files; the aliases are removed on exit.
    """
    if _gym_installed():
        yield
        return
    finder = _GymToGymnasiumFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [name for name in sys.modules if name == "gym" or name.startswith("gym.")]:
            del sys.modules[name]


def canonical_env_id(env_id: str) -> str:
    """
    Today's id for an env id that may come from an old zoo file: the known renames of :data:`ENV_ID_RENAMES`.

    No version fallback: an unknown id is returned unchanged (see ``sb3_distill.teachers.envs.resolve_env_id`` for
    the ids that are registered but can no longer be made, like MuJoCo's ``-v3``).

    :param env_id: the id recorded with the agent, e.g. ``LunarLander-v2``
    :return: ``LunarLander-v3`` for a renamed id, else ``env_id``
    """
    return ENV_ID_RENAMES.get(env_id, env_id)


def legacy_env_ids(env_id: str) -> list[str]:
    """
    The ids a current env may have been saved under in older collections, newest first.

    Only known renames count: an older version of the same name is often a different task
    (``CartPole-v0`` ends at 200 steps), so it is never substituted.

    :param env_id: a current env id, e.g. ``LunarLander-v3``
    :return: ``[env_id, "LunarLander-v2"]``
    """
    return [env_id, *(old for old, new in ENV_ID_RENAMES.items() if new == env_id)]
