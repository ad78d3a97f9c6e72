"""Every objective of the path in one place, apart from the models (as open_clip keeps them).

Each family lives in its own submodule and is re-exported here, so notebooks write
`from vp_utils.losses import info_nce`.
"""
from .contrastive import alignment, clip_loss, info_nce, nt_xent, uniformity  # noqa: F401
from .distillation import (dino_loss, entropy, ibot_patch_loss, koleo_loss, sinkhorn_knopp, teacher_targets,
                           update_center)  # noqa: F401
from .language import next_token_loss  # noqa: F401
