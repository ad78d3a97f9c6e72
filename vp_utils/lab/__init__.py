"""The lab's plumbing: setting a notebook up, checking inputs, asserting claims, figures,
explorers and progress bars."""
from .checks import show
from .claims import Claim, ClaimFailed, claim, claim_near
from .exercises import ExerciseMismatch, self_check
from .explorers import explore
from .figures import (add_colour_bar, draw_patch_grid, overlay_heatmap, plot_curves, plot_embedding, show_feature_maps,
                      show_images, show_source, smooth, to_image)
from .progress import progress_bar
from .environment import Config, in_notebook_kernel, setup, widgets_available

__all__ = ["Claim", "ClaimFailed", "Config", "add_colour_bar", "claim", "claim_near", "draw_patch_grid",
           "ExerciseMismatch", "explore", "in_notebook_kernel", "overlay_heatmap", "plot_curves", "plot_embedding",
           "progress_bar", "self_check", "setup", "show", "show_feature_maps", "show_images", "show_source", "smooth",
           "to_image", "widgets_available"]
