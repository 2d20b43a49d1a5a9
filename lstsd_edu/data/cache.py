"""Where data is cached, and how a cache file is written and read back safely.

Generated sets (MNIST-1D) and downloaded corpora are turned into arrays once and cached as one
file each in the repository's top-level `data/` folder (`DATA_DIR`; every loader takes `root=` to
use another folder). Two things can go wrong with such a file, and both are handled here:

* **A crash while writing** (Ctrl-C, a full disk) would leave half a file that looks like a cache.
  So a cache is written under a temporary name in the same folder and then renamed over the final
  name with `os.replace`, which is atomic on one file system: the final name holds either nothing
  or a whole file.
* **A damaged file** (truncated, overwritten, from an older format) is detected when it is read:
  the reader raises `DamagedCache` when the file cannot be loaded, lacks a key or has the wrong
  shapes. A generated set is then rebuilt, with one warning naming the file; a downloaded set is
  not fetched again behind the user's back: a `ConfigError` names the file and says to delete it.
"""

from __future__ import annotations

import os
import pickle
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from ..errors import ConfigError

# lstsd_edu/data/cache.py -> the repository root is three folders up
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "data"

# what loading a damaged file raises: numpy's zip reader, torch's zip reader and unpickler, …
READ_ERRORS = (
    OSError,
    EOFError,
    KeyError,
    ValueError,
    RuntimeError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    zlib.error,
)

T = TypeVar("T")


class DamagedCache(Exception):
    """A cache file exists but does not hold what its reader expects; the message says what."""


def data_dir(root: Path | str | None = None) -> Path:
    """`root` as a Path, or `DATA_DIR` when None (read at call time, so it can be redirected)."""
    return Path(DATA_DIR if root is None else root)


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(file)` on a temporary file next to `path`, then rename it to `path`.

    The temporary file is removed if `write` fails, so `path` never holds a partial file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # same folder
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # atomic: path holds the old file or the whole new one
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_cached(
    path: Path,
    read: Callable[[Path], T],
    write: Callable[[BinaryIO], None],
    rebuild_if_damaged: bool,
    fix: str = "delete it and run again",
) -> T:
    """`read(path)`, writing the file first with `write` if it does not exist.

    `read` raises `DamagedCache` for a file it cannot use. Then, if `rebuild_if_damaged`, the file
    is rewritten with one warning; otherwise a `ConfigError` names the file and `fix`.
    """
    if path.exists():
        try:
            return read(path)
        except DamagedCache as damage:
            if not rebuild_if_damaged:
                raise ConfigError(f"cached file {path} is damaged ({damage}); {fix}") from damage
            warnings.warn(f"cached file {path} is damaged ({damage}); rebuilding it", stacklevel=3)
    atomic_write(path, write)
    return read(path)


def read_file(path: Path, load: Callable[[Path], T]) -> T:
    """`load(path)`, with any error of reading a damaged file turned into `DamagedCache`."""
    try:
        return load(path)
    except READ_ERRORS as error:
        lines = str(error).strip().splitlines() or [""]
        first_sentence = lines[0].split(". ")[0][:100]  # torch's unpickling errors run to a page
        raise DamagedCache(": ".join(filter(None, (type(error).__name__, first_sentence)))) from error


def check_cache(condition: bool, message: str) -> None:
    """Raise `DamagedCache(message)` unless `condition`: a reader's shape and key checks."""
    if not condition:
        raise DamagedCache(message)
