"""The one rule for when readers use their compiled (Numba) paths.

Every reader has a compiled path and a pure-Python one that give identical results. Importing
Numba and loading the cached kernels costs about 0.5 s once per process, which the Python
parsers lose over about :data:`WORTH_FROM` structures; so the compiled path is taken for inputs
of that size, or at once when Numba is imported already (e.g. by a descriptor backend). The
environment variable :data:`ENV` or a caller's flag overrides the rule.
"""

from __future__ import annotations

import functools
import os
import sys
from types import ModuleType

__all__ = ["ENV", "WORTH_FROM", "numba_kernels", "requested", "use_compiled"]

#: Environment variable: "0" (also "false", "no", "off") never, "1" (also "true", "yes",
#: "on") always, "auto" or unset: by the rule of :func:`use_compiled`.
ENV = "XANESNET_FAST_XYZ"
#: Structures from which the compiled path pays for its start-up cost.
WORTH_FROM = 8192


def requested(flag: bool | None = None) -> bool | None:
    """``flag`` when given, else what :data:`ENV` asks for (None: the rule decides)."""
    if flag is not None:
        return bool(flag)
    value = os.environ.get(ENV, "auto").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return None


def use_compiled(expected_structures: int, flag: bool | None = None) -> bool:
    """Whether to use the compiled path for about ``expected_structures`` structures:
    :func:`requested` when that decides, else when Numba is imported already or
    ``expected_structures`` >= :data:`WORTH_FROM`."""
    wanted = requested(flag)
    if wanted is not None:
        return wanted
    return "numba" in sys.modules or expected_structures >= WORTH_FROM


@functools.cache
def numba_kernels() -> ModuleType | None:
    """The Numba parsers (:mod:`xanesnet.io._kernels`), or None without Numba."""
    try:
        from xanesnet.io import _kernels
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return _kernels
