"""
The student policies' former module: they live in :mod:`sb3_distill.common.actor_critic` (shared by PolicyDistill and
DistillPPO). Kept because models saved before the move name their policy class by this path.
"""

from sb3_distill.common.actor_critic import (
    CnnPolicy,
    MlpPolicy,
    MultiInputPolicy,
    SquashedActorCriticCnnPolicy,
    SquashedActorCriticPolicy,
    SquashedMultiInputActorCriticPolicy,
    is_squashed,
    with_squashing,
)

__all__ = [
    "CnnPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "SquashedActorCriticCnnPolicy",
    "SquashedActorCriticPolicy",
    "SquashedMultiInputActorCriticPolicy",
    "is_squashed",
    "with_squashing",
]
