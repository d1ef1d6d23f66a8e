"""Patch status (``patch.status``): pending updates, security flags, kernel and reboot state."""

from agent.collectors.patches.collector import PATCH_FIELDS, PatchCollector
from agent.collectors.patches.windows import WindowsPatchCollector

__all__ = ["PATCH_FIELDS", "PatchCollector", "WindowsPatchCollector"]
