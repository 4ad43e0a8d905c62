from sb3_distill.distill_dqn.distill_dqn import DistillDQN
from sb3_distill.distill_dqn.recipes import DEFAULT_RECIPE, RECIPES

__all__ = ["DEFAULT_RECIPE", "RECIPES", "DistillDQN"]
