"""Long work that survives: finished runs kept on disk, an executor that resumes, safe output files.

A comparison of four methods over five seeds is twenty runs; on a CPU that is minutes, on CIFAR
hours. Three things must not cost the runs already finished: a Ctrl-C, a crash, and a rerun.

    store = RunStore("runs/compare/runs")
    results = execute([("ce", config, 0), ("lstsd", config, 0)], data, store=store)   # [(summary, history)]

* **The store** (`RunStore`) keeps each finished run as one JSON file, `<root>/<key>.json`: its
  summary row, its history, and what it was (method, the full `Config`, seed, the data's
  identity). The file is written the moment the run finishes, atomically, so the store only ever
  holds whole runs.
* **The key** (`run_key`) is a hash of everything that decides a run's numbers: the method, every
  field of the `Config` (a setting added to `Config` later changes every key: stored runs are then
  trained again, never mistaken for runs of the new settings), the seed, and the data — a
  fingerprint of its tensors (`data_fingerprint`), or, for a run that loads its own data from its
  Config (`data=None`), the Config's data settings. The code's version is not in the key: after
  changing the training code, start over (`fresh=True`, the command line's `--fresh`).
* **The executor** (`execute`) skips the runs already in the store, trains the others (one after
  another, or `jobs` at a time in worker processes) and returns every run's summary and history
  in the order of the tasks. A run read back from the store and a run just trained go through the
  same encoding, so a resumed command gives the same numbers, to the last bit, as one that was
  never interrupted.
* **Ctrl-C** stops the workers (they ignore SIGINT themselves: only this process decides) and
  raises `Interrupted`, a `KeyboardInterrupt` whose message says how many runs are kept and how
  to resume. The command line prints that one line and exits with code 130.
* **Output files** are checked before any training (`output_folder`, `output_file`: a folder that
  cannot be created or written fails at once, as bad input) and written atomically
  (`write_csv`, `write_text`, `save_figure`, all through `data.cache.atomic_write`): a crash
  never leaves half a file that looks complete.

A run that diverged (its training loss became NaN or exploded: see `trainer.Trainer`) is a
finished run too: it is stored with `summary["diverged"] = True` and the epoch it stopped in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import pickle
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .config import Config
from .data import Dataset
from .data.cache import atomic_write
from .errors import ConfigError, check_range

__all__ = [
    "Interrupted",
    "RunStore",
    "command",
    "data_fingerprint",
    "execute",
    "output_file",
    "output_folder",
    "run_key",
    "save_figure",
    "set_default_run",
    "write_csv",
    "write_text",
]

FORMAT = 1  # of a stored run; part of every key, so a new format never reads an old file
Task = tuple[str, Config, int]  # (method, config, seed)
Outcome = tuple[dict, pd.DataFrame]  # (summary row, history)
RunFunction = Callable[[str, Config, int, "Dataset | None"], Outcome]  # trains one task


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a long command; the message says what is kept and how to resume."""


# ---------------------------------------------------------------------------------------------
# What a run is: its key
# ---------------------------------------------------------------------------------------------
def data_fingerprint(data: Dataset) -> str:
    """A hash of everything in `data` a run could depend on: the number of classes, the input
    shape and every field of every split (each tensor's dtype, shape and bytes; other fields such
    as CIFAR's `augment` by value). The name is left out: the same tensors are the same data."""
    digest = hashlib.blake2b(digest_size=16)

    def feed(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy())
        elif dataclasses.is_dataclass(value):
            digest.update(f"{type(value).__name__}(".encode())
            for f in dataclasses.fields(value):
                if f.name != "name":
                    digest.update(f"{f.name}=".encode())
                    feed(getattr(value, f.name))
            digest.update(b")")
        else:
            digest.update(f"{value!r};".encode())

    if not isinstance(data, Dataset):
        raise ConfigError(f"data must be a Dataset (e.g. Dataset.from_arrays(...)); got {type(data).__name__}")
    feed(data)
    return digest.hexdigest()


def run_key(method: str, config: Config, seed: int, data: Dataset | str | None = None) -> str:
    """The name a run is stored under: `<method>-<seed>-<hash>`, the hash over the method, every
    Config field, the seed and the data (a `Dataset`, its `data_fingerprint`, or None for data the
    run loads from its Config)."""
    identity = data_fingerprint(data) if isinstance(data, Dataset) else data
    what = {"format": FORMAT, "method": method, "config": dataclasses.asdict(config), "seed": seed, "data": identity}
    text = json.dumps(what, sort_keys=True)
    return f"{method}-{seed}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


# ---------------------------------------------------------------------------------------------
# The store: one JSON file per finished run
# ---------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (json writes floats exactly: they read back bit for bit)."""
    return value.item() if hasattr(value, "item") else str(value)


def _encode(summary: dict, history: pd.DataFrame, about: dict | None = None) -> str:
    """A run as JSON: what it was (`about`, for a reader of the file), its summary and its history."""
    record = {"run": about or {}, "summary": summary, "history": history.to_dict(orient="split", index=False)}
    return json.dumps(record, default=_plain, indent=1)


def _decode(text: str) -> Outcome:
    record = json.loads(text)
    history = record["history"]
    return dict(record["summary"]), pd.DataFrame(history["data"], columns=history["columns"])


class RunStore:
    """Finished runs on disk, one JSON file each: `<root>/<key>.json` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json"))

    def get(self, key: str) -> Outcome | None:
        """The run's (summary, history), or None if it is not here. A file that cannot be read
        (edited by hand, from another version) counts as absent, with a warning: it is trained
        again and overwritten."""
        path = self.path(key)
        try:
            return _decode(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            warnings.warn(f"stored run {path} cannot be read ({type(error).__name__}); training it again", stacklevel=2)
            return None

    def put(self, key: str, text: str) -> None:
        """Write an encoded run atomically (a temporary file in the same folder, then renamed)."""
        atomic_write(self.path(key), lambda file: file.write(text.encode("utf-8")))

    def discard(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"


# ---------------------------------------------------------------------------------------------
# The executor
# ---------------------------------------------------------------------------------------------
_default_run: RunFunction | None = None


def set_default_run(run: RunFunction) -> None:
    """Make `run` what `execute` trains a task with when not given one. `experiments` calls this
    with `experiments.outcome` when it is imported: it builds on this module (its `compare` and
    `sweep` go through `execute`), so this module cannot import it."""
    global _default_run
    _default_run = run


def execute(
    tasks: Sequence[Task],
    data: Dataset | None = None,
    *,
    run: RunFunction | None = None,
    store: RunStore | str | Path | None = None,
    jobs: int = 1,
    progress: bool = True,
    desc: str = "runs",
    fresh: bool = False,
) -> list[Outcome]:
    """Every task's (summary, history), in the order of `tasks`, training only what `store` lacks.

    `tasks` are (method, config, seed); `run(method, config, seed, data)` trains one and returns
    its summary row and history: by default `experiments.outcome` (see `set_default_run`); a
    function of your own must be defined at module level, so that worker processes can import it.
    `data` is what every task trains on, or None: each run loads its own from its config.

    Each run is written to `store` (a `RunStore` or its folder) as it finishes; `fresh=True` first
    removes these tasks' runs from it (other runs in the store are left alone). `jobs` > 1 trains
    that many at a time in worker processes (spawned, each with this process's number of torch
    threads), which give the same numbers as training here.

    Ctrl-C raises `Interrupted` after the workers are stopped; the runs finished by then are in
    the store, and calling `execute` again with the same tasks trains only the others.
    """
    check_range("jobs", jobs, 1, 1024, integer=True)
    run = run or _default_run
    if run is None:
        raise ConfigError("run must be given: import lstsd_edu.experiments for the default (experiments.outcome)")
    if isinstance(store, (str, Path)):
        store = RunStore(store)
    identity = data_fingerprint(data) if data is not None else None
    keys = [run_key(method, config, seed, identity) for method, config, seed in tasks]
    unique = list(dict.fromkeys(keys))  # the same task twice is trained once
    task_of = dict(zip(keys, tasks))
    results: dict[str, Outcome] = {}
    if store is not None:
        if fresh:
            store.discard(unique)
        for key in unique:
            found = store.get(key)
            if found is not None:
                results[key] = found
    todo = [key for key in unique if key not in results]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(unique), initial=len(results), desc=desc, disable=not progress)

    def finish(key: str, outcome: Outcome) -> None:
        method, config, seed = task_of[key]
        about = {"method": method, "seed": seed, "config": dataclasses.asdict(config), "data": identity}
        text = _encode(*outcome, about)
        if store is not None:
            store.put(key, text)
        results[key] = _decode(text)  # the same decoding as a run read back from the store
        bar.update()

    try:
        if jobs == 1 or len(todo) <= 1:
            for key in todo:
                finish(key, run(*task_of[key], data))
        else:
            _in_workers(todo, task_of, data, run, min(jobs, len(todo)), finish)
    except KeyboardInterrupt:
        bar.leave = False  # the one line that follows says how far it got
        kept = sum(key in store for key in unique) if store is not None else len(results)
        raise Interrupted(_interrupted(kept, len(unique), store)) from None
    finally:
        bar.close()
    return [results[key] for key in keys]


def _interrupted(kept: int, total: int, store: RunStore | None) -> str:
    if store is None:
        return f"interrupted: {kept} of {total} runs had finished; none is kept (no store was given)"
    return (
        f"interrupted: {kept} of {total} runs finished and are kept in {store.root}; "
        "run the same command again to resume"
    )


def _in_workers(todo: list[str], task_of: dict, data, run, jobs: int, finish: Callable[[str, Outcome], None]) -> None:
    """Train the runs `todo` in `jobs` spawned worker processes, calling `finish` as each ends."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # not fork: torch's threads do not survive a fork
    try:
        pickle.dumps(run)
    except (pickle.PicklingError, AttributeError, TypeError):
        raise ConfigError(f"run must be a module-level function to train in worker processes; got {run!r}") from None
    with _sigint_ignored():  # the workers are born ignoring Ctrl-C: this process alone handles it
        # the data goes to each worker once, as plain pickled bytes (a copy: not torch's shared
        # memory, whose handles a stopped worker could leave behind)
        initargs = (run, pickle.dumps(data), torch.get_num_threads())
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=initargs)
        pending = {pool.submit(_work, task_of[key]): key for key in todo}  # (workers start here)
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                key = pending.pop(future)
                outcome, caught = future.result()
                for message, category in caught:  # a worker's warnings, shown here, once each
                    warnings.warn(message, category, stacklevel=1)
                finish(key, outcome)
    except BaseException:
        with _sigint_ignored():  # a second Ctrl-C must not leave the workers running
            _stop(pool)
            for future, key in pending.items():  # finished while we were stopping: keep them too
                if future.done() and not future.cancelled() and future.exception() is None:
                    finish(key, future.result()[0])
        raise
    pool.shutdown()


def _stop(pool) -> None:
    """End every worker now (a run in progress is lost; the finished ones are stored) and wait."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT inside the block (main thread only: elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_WORKER: dict = {}  # a worker process's run function and data, set once by `_start_worker`


def _start_worker(run, data: bytes, threads: int) -> None:
    from tqdm.auto import tqdm

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers; Ctrl-C is its business
    torch.set_num_threads(threads)
    # tqdm would otherwise create a multiprocessing lock here, which a stopped worker cannot
    # release: the resource tracker would then warn of a leaked semaphore at exit
    tqdm.set_lock(threading.RLock())
    _WORKER.update(run=run, data=pickle.loads(data))


def _work(task: Task) -> tuple[Outcome, list]:
    """One run in a worker: its outcome and the warnings it raised (shown by the parent)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = _WORKER["run"](*task, _WORKER["data"])
    return outcome, [(str(w.message), w.category) for w in caught]


# ---------------------------------------------------------------------------------------------
# Output files: checked before training, written atomically
# ---------------------------------------------------------------------------------------------
def output_folder(path: str | Path, option: str = "--out") -> Path:
    """`path` as a folder this process can write, created if needed; else a ConfigError naming
    `option`. Called before any training, so that a bad `--out` costs seconds, not the runs."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} must be a folder; {path} is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # can we create a file in it?
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"{option} must be a folder this process can write; {path}: {reason}") from None
    return path


def output_file(path: str | Path, option: str = "--out") -> Path:
    """`path` as a file this process can write (its folder created if needed); else a ConfigError."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} must be a file name; {path} is a folder")
    output_folder(path.parent, option)
    return path


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """`frame.to_csv(path, index=False)`, atomically."""
    write_text(frame.to_csv(index=False), path)


def write_text(text: str, path: str | Path) -> None:
    atomic_write(Path(path), lambda file: file.write(text.encode("utf-8")))


def save_figure(figure, path: str | Path, **kwargs) -> None:
    """`figure.savefig(path, **kwargs)`, atomically; the format is the file's suffix."""
    path = Path(path)
    atomic_write(path, lambda file: figure.savefig(file, format=path.suffix.lstrip(".") or "png", **kwargs))


# ---------------------------------------------------------------------------------------------
# A command's outcome as an exit code
# ---------------------------------------------------------------------------------------------
def command(prog: str, main: Callable[[], int | None]) -> int:
    """Run a command's `main()` and return its exit code, the way every command here ends:

        0 (or main's own code)   done
        2                        bad input: one line `prog: error: …` naming the parameter
        130                      Ctrl-C: one line saying what is kept and how to resume

    No traceback for either; each warning is one line `prog: warning: …`.
    """

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{prog}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = one_line
        try:
            return main() or 0
        except ConfigError as error:
            print(f"{prog}: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as interrupt:
            text = str(interrupt) if isinstance(interrupt, Interrupted) else "interrupted"
            print(f"{prog}: {text}", file=sys.stderr)
            return 130
