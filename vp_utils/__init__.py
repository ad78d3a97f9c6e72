"""vp_utils: the thin helper package of Vision Path. Each module is one concept."""
from .env import Config, setup

__all__ = ["Config", "setup"]
