"""Step functions that no job could import: pickled by value.

A function defined in ``__main__`` (a script run as ``python train.py``, ``python -c``, or a
Jupyter/IPython session) has no module a job can import, so its code travels with it
(cloudpickle). The modules it imports are pickled by reference: the code package ships them.
A pickled function needs the launcher's Python minor version in the job.
"""

from __future__ import annotations

import sys
from typing import Any


def defined_in_main(function: Any) -> bool:
    """Whether ``function`` lives in a ``__main__`` that a job cannot import by name.

    ``python -m package.module`` runs a module that has a name: that one is imported. A
    notebook's functions say ``__main__`` too but live in the session's namespace, not in
    the module that started the kernel (``python -m ipykernel_launcher``): pickled.
    """
    if function.__module__ != "__main__":
        return False
    module = sys.modules.get("__main__")
    spec = getattr(module, "__spec__", None)
    named = spec is not None and bool(spec.name)
    return not (named and getattr(function, "__globals__", None) is vars(module))


def pickle_by_value(function: Any) -> bytes:
    """The function's bytes, with its code and the ``__main__`` globals it uses."""
    import cloudpickle

    data: bytes = cloudpickle.dumps(function)
    return data


def python_version() -> str:
    """``major.minor`` of this interpreter (a function pickled by value needs the same)."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"
