"""
The former module of the student policies, which live in :mod:`sb3_distill.common.actor_critic` (shared by
PolicyDistill and DistillPPO): models saved before the move name their squashed policy class by this path.
"""

from sb3_distill.common.actor_critic import (
    SquashedActorCriticCnnPolicy,
    SquashedActorCriticPolicy,
    SquashedMultiInputActorCriticPolicy,
)

__all__ = ["SquashedActorCriticCnnPolicy", "SquashedActorCriticPolicy", "SquashedMultiInputActorCriticPolicy"]
