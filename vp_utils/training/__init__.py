"""Training: the one loop (`fit`, `fit_together`), the recipes and `run`, which trains one of them
live, checkpoints and the models the project trained and ships."""
from ..schedules import cosine, cosine_ramp
from .checkpoint import check_rerun, load_checkpoint, load_shipped, record_flag, save_checkpoint
from .loop import History, as_metrics, decay_groups, fit, fit_together
from .recipes import MASK_RATIOS, RECIPES, Recipe, get_recipe, run, run_model, shipped_model

__all__ = ["History", "MASK_RATIOS", "RECIPES", "Recipe", "as_metrics", "check_rerun", "cosine", "cosine_ramp", "decay_groups", "fit",
           "fit_together", "get_recipe", "load_checkpoint", "load_shipped", "record_flag", "run", "run_model",
           "save_checkpoint", "shipped_model"]
