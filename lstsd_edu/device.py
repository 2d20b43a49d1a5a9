"""Where training runs, and how it is seeded: the one place a device is named.

    device = get_device("auto")      # cuda → mps → cpu
    seed_everything(0)               # Python, NumPy and torch

`Config.device` and the `Trainer` accept the names in `DEVICES`; naming a device this machine
does not have is an error, not a silent fallback.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from .errors import Choice, ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
DEVICE = Choice(DEVICES)


def get_device(name: str = "auto") -> torch.device:
    """`auto` → cuda if available, else mps, else cpu. Naming an absent device is an error."""
    DEVICE.check("device", name)
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if name == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if available[d]))
    if not available[name]:
        raise ConfigError(
            f"device must be one available on this machine "
            f"({', '.join(d for d in DEVICES if d == 'auto' or available[d])}); got {name!r}"
        )
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
