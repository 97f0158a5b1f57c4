"""`datasets` builders (installed as `shift_hub.builders`)."""
from .shift_hub_builder import ShiftHub, ShiftHubConfig

__all__ = ["ShiftHub", "ShiftHubConfig"]
