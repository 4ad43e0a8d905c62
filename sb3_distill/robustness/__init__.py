"""
Students for the real world: how an agent holds up when what it observes, how it acts, or the physics change, and the
one channel through which a privileged teacher sees what its student does not.

* :class:`StudentObservation` and its transforms (:mod:`~sb3_distill.robustness.observations`): the student sees
  ``transform(obs)``, the teacher the env's own observation in ``info["teacher_observation"]``;
* perturbation wrappers (:mod:`~sb3_distill.robustness.wrappers`): action noise, sticky actions, dynamics shifts;
* several dynamics-teachers into one student (:mod:`~sb3_distill.robustness.experts`): :class:`RandomDynamics`
  draws the dynamics per episode and tells the teacher which, :class:`ExpertTeacher` answers with that dynamics'
  expert;
* adversarial observations (:mod:`~sb3_distill.robustness.adversarial`): FGSM / PGD against the agent's own choice;
* :func:`evaluate_robustness` (:mod:`~sb3_distill.robustness.evaluation`) and :func:`plot_robustness`; on the command
  line ``sb3-distill robustness MODEL --env ENV --perturbation NAME --levels ...``.
"""

from sb3_distill.robustness.adversarial import ATTACKS, AdversarialObservation, AttackError, attack, differentiable_agent
from sb3_distill.robustness.evaluation import (
    PERTURBATIONS,
    ExportedAgent,
    Perturbation,
    RobustnessError,
    evaluate_robustness,
    get_perturbation,
    normalized_scores,
    perturbed_env,
    rows_to_frame,
)
from sb3_distill.robustness.experts import DYNAMICS_KEY, ExpertTeacher, RandomDynamics
from sb3_distill.robustness.observations import (
    TEACHER_OBSERVATION_KEY,
    VELOCITY_INDICES,
    Compose,
    Delay,
    GaussianNoise,
    HideDimensions,
    StudentObservation,
    hide_velocities,
    observation_scale,
    student_space,
)
from sb3_distill.robustness.plot import plot_robustness
from sb3_distill.robustness.wrappers import (
    MUJOCO_PARAMETERS,
    ActionNoise,
    ShiftDynamics,
    StickyActions,
    check_dynamics,
    shift_dynamics,
)

__all__ = [
    "ATTACKS",
    "DYNAMICS_KEY",
    "MUJOCO_PARAMETERS",
    "PERTURBATIONS",
    "TEACHER_OBSERVATION_KEY",
    "VELOCITY_INDICES",
    "ActionNoise",
    "AdversarialObservation",
    "AttackError",
    "Compose",
    "Delay",
    "ExpertTeacher",
    "ExportedAgent",
    "GaussianNoise",
    "HideDimensions",
    "Perturbation",
    "RandomDynamics",
    "RobustnessError",
    "ShiftDynamics",
    "StickyActions",
    "StudentObservation",
    "attack",
    "check_dynamics",
    "differentiable_agent",
    "evaluate_robustness",
    "get_perturbation",
    "hide_velocities",
    "normalized_scores",
    "observation_scale",
    "perturbed_env",
    "plot_robustness",
    "rows_to_frame",
    "shift_dynamics",
    "student_space",
]
