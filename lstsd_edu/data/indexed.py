"""Any map-style `torch.utils.data.Dataset`, with every item saying which sample it is.

A per-sample method like LSTSD reads and writes one record per training sample, so a batch
must carry the samples' indices next to x and y. The tensor sets of `tensors.py` do that by
construction; for a dataset that must be read item by item (images decoded from files,
augmentations in worker processes), wrap it:

    loader = DataLoader(WithIndex(my_dataset), batch_size=128, shuffle=True,
                        num_workers=4, collate_fn=collate_with_index)
    for x, y, index in loader:          # x: [B, ...], y: [B] int64, index: [B] int64
        ...

`WithIndex(dataset)[i]` is `(x, y, i)`, with x and y as the wrapped dataset returns them.

torch's `default_collate` already stacks such items for simple cases (a tensor x and an int y
give x [B, ...], y [B] int64, index [B] int64). `collate_with_index` exists to *guarantee* the
contract whatever the wrapped dataset returns: y as an int, a numpy integer or a 0-d / one-
element tensor of any integer dtype always becomes int64 [B] (`default_collate` would keep a
numpy int32 or a uint8 tensor's dtype, and turn one-element labels into [B, 1]), the index is
always int64 [B], and a label that is not one integer fails with a message instead of a shape
error later. It is a plain module-level function, so it pickles into worker processes (a lambda
would not under the `spawn` start method).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset

from ..errors import ConfigError


class WithIndex(TorchDataset):
    """Item i of `dataset`, `(x, y)`, as `(x, y, i)`."""

    def __init__(self, dataset: TorchDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        item = self.dataset[index]
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ConfigError(
                f"dataset items must be (x, y) pairs to carry an index; item {index} is a {type(item).__name__}"
            )
        x, y = item
        return x, y, int(index)


def collate_with_index(items: Sequence[tuple[Any, Any, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`[(x, y, i), …]` -> `(x [B, ...] stacked, y [B] int64, index [B] int64)`."""
    x = torch.stack([torch.as_tensor(x) for x, _, _ in items])  # [B, ...]
    y = torch.tensor([_class_label(y) for _, y, _ in items], dtype=torch.long)  # [B]
    index = torch.tensor([int(i) for _, _, i in items], dtype=torch.long)  # [B]
    return x, y, index


def _class_label(y: Any) -> int:
    """One integer class label from an int, a numpy integer or a one-element tensor."""
    label = torch.as_tensor(y)
    if label.numel() != 1 or label.is_floating_point() or label.is_complex():
        raise ConfigError(f"a dataset label must be one integer class id; got {y!r}")
    return int(label.item())
