from sb3_distill.common.datasets import DatasetError, DatasetNotFoundError, collect_teacher_dataset, load_teacher_dataset
from sb3_distill.policy_distill.online import OnlineDistillCallback
from sb3_distill.common.actor_critic import (
    CnnPolicy,
    MlpPolicy,
    MultiInputPolicy,
    SquashedActorCriticCnnPolicy,
    SquashedActorCriticPolicy,
    SquashedMultiInputActorCriticPolicy,
)
from sb3_distill.policy_distill.policy_distill import PolicyDistill

__all__ = [
    "CnnPolicy",
    "DatasetError",
    "DatasetNotFoundError",
    "MlpPolicy",
    "MultiInputPolicy",
    "OnlineDistillCallback",
    "PolicyDistill",
    "SquashedActorCriticCnnPolicy",
    "SquashedActorCriticPolicy",
    "SquashedMultiInputActorCriticPolicy",
    "collect_teacher_dataset",
    "load_teacher_dataset",
]
