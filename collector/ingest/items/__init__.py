"""Validators for event item types, one module per domain, each exporting ``ITEM_MODELS``.

``ITEM_MODELS`` maps an item type (``auth.failure``) to the pydantic model of its ``data``;
``collector.ingest.schema`` collects them into the discriminated union a batch is checked against.
"""

from __future__ import annotations

import importlib
import pkgutil

from pydantic import BaseModel


def item_models() -> dict[str, type[BaseModel]]:
    """Every event item type declared by a module of this package."""
    found: dict[str, type[BaseModel]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for type_, model in getattr(module, "ITEM_MODELS", {}).items():
            if type_ in found:
                raise RuntimeError(f"item type {type_!r} declared twice ({info.name})")
            found[type_] = model
    return found
