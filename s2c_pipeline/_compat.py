"""Lets compressai import where torchvision is absent.

compressai 1.2.8 imports ``torchvision.transforms`` unconditionally (for its transform registry,
which we never use), and there is no CPU build of torchvision. When torchvision is missing we
register an empty placeholder module; when a real torchvision is installed (GPU machines) it is
used untouched.
"""

import importlib.util
import sys
import types

if importlib.util.find_spec("torchvision") is None and "torchvision" not in sys.modules:
    _torchvision = types.ModuleType("torchvision")
    _transforms = types.ModuleType("torchvision.transforms")
    _torchvision.transforms = _transforms  # type: ignore[attr-defined]
    _torchvision.__s2c_placeholder__ = True  # type: ignore[attr-defined]
    sys.modules["torchvision"] = _torchvision
    sys.modules["torchvision.transforms"] = _transforms
