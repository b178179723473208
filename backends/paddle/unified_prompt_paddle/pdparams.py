""".pdparams files: a pickled dict of numpy arrays, the format `paddle.save` writes.

Writing uses pickle as paddle does, so `paddle.load` and paddlenlp's `from_pretrained`
read our files. Reading never runs a plain unpickler: an adapter folder may come from
anyone, and a pickle can call any function. `load_arrays` allows exactly the globals
numpy needs to rebuild an array and refuses everything else before it is called; the
result must be a dict of name -> numeric array (paddle's own `...@@` bookkeeping entries,
plain strings and numbers, are accepted and dropped).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.errors import UserInputError

#: (module, name) pairs an array pickle needs, in numpy 1.x and 2.x spellings.
_NUMPY_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {(module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")} | {
    ("numpy", "ndarray"), ("numpy", "dtype")}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles call (`_codecs.encode`) to turn array bytes back into bytes."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only numpy arrays "
                                     "are allowed in a .pdparams file)")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent reference")


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        pickle.dump({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()},
                    fh, protocol=4)


def _metadata(value: Any) -> bool:
    """Plain data paddle stores beside the weights (e.g. StructuredToParameterName@@)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(_metadata(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _metadata(v) for k, v in value.items())
    return False


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """name -> array from a .pdparams file; UserInputError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: missing adapter weights")
    try:
        data = _ArrayUnpickler(io.BytesIO(path.read_bytes())).load()
    except pickle.UnpicklingError as exc:
        raise UserInputError(f"{path}: not a .pdparams weights file ({exc})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError, OverflowError) as exc:
        raise UserInputError(f"{path}: not a readable .pdparams file (truncated or corrupt: "
                             f"{type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a .pdparams file must hold a dict of arrays, not "
                             f"{type(data).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise UserInputError(f"{path}: weight names must be strings, not {type(key).__name__}")
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            arrays[key] = value
        elif key.endswith("@@") and _metadata(value):
            continue
        else:
            kind = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
            raise UserInputError(f"{path}: {key!r} is a {kind}, not a numeric array")
    return arrays
