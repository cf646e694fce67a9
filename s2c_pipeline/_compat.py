"""Imports compressai where torchvision is absent, without leaving a fake torchvision behind.

compressai 1.2.8 imports ``torchvision.transforms`` unconditionally (for its transform registry,
which we never use), and there is no CPU build of torchvision. When torchvision is missing, an
empty placeholder stands in for it during ``import compressai`` only, and is taken out of
``sys.modules`` again as soon as that import is done: ``compressai/__init__`` imports all of its
subpackages, so nothing of compressai that we use imports torchvision later. A user's own
``import torchvision`` then fails as it would without us, and ``importlib.util.find_spec`` gives
None instead of raising on a module without a spec. When a real torchvision is installed (GPU
machines) it is used untouched.

``s2c_pipeline.codec`` imports this module first, so every import of compressai in the package
goes through ``import_compressai``; ``import s2c_pipeline`` alone imports neither.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types

_PLACEHOLDERS = ("torchvision", "torchvision.transforms")


def import_compressai() -> None:
    """Import compressai once, with the torchvision placeholder in place only while it imports."""
    if "compressai" in sys.modules:
        return
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        importlib.import_module("compressai")
        return
    import torch  # noqa: F401  first, so that torch's own import never sees the placeholder

    placeholders = {name: _empty_module(name) for name in _PLACEHOLDERS}
    placeholders["torchvision"].transforms = placeholders["torchvision.transforms"]  # type: ignore[attr-defined]
    sys.modules.update(placeholders)
    try:
        importlib.import_module("compressai")
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _empty_module(name: str) -> types.ModuleType:
    """A module with a spec, so ``find_spec`` answers instead of raising while it is registered."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    return module


import_compressai()
