"""Encoded prompts -> one padded batch with explicit positions.

Causal LMs are padded on the left, so every row's last token sits in the last column and
one cached prompt can be continued by all rows at once. Position ids are given explicitly
(count of real tokens before each one) so a row's numbers do not depend on how much padding
its batch companions forced on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unified_prompt.encoding import Encoded


@dataclass
class Batch:
    ids: torch.Tensor          # (B, L) token ids; soft positions hold a placeholder
    mask: torch.Tensor         # (B, L) 1 for real tokens
    positions: torch.Tensor    # (B, L) position ids (pads get 0)
    soft_rows: torch.Tensor    # (S,) row of each virtual token
    soft_cols: torch.Tensor    # (S,) column of each virtual token
    soft_slot: torch.Tensor    # (S,) its template slot
    soft_index: torch.Tensor   # (S,) its index within the slot
    mask_cols: list[list[int]]  # columns of each row's mask tokens (masked LMs)
    offsets: list[int]         # columns of padding before each row (left padding)
    next_positions: torch.Tensor  # (B,) position id the next token of each row takes

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])

    @property
    def has_soft(self) -> bool:
        return bool(self.soft_rows.numel())


def pad_batch(encoded: Sequence[Encoded], pad_id: int, device: torch.device, *,
              left: bool = True, start: int = 0) -> Batch:
    """Pad `encoded` into tensors; `start` is added to every position (a prefix's length)."""
    width = max(len(e) for e in encoded)
    n = len(encoded)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    positions = torch.zeros((n, width), dtype=torch.long)
    rows, cols, slots, index = [], [], [], []
    mask_cols: list[list[int]] = []
    offsets: list[int] = []
    for i, enc in enumerate(encoded):
        length = len(enc)
        off = width - length if left else 0
        offsets.append(off)
        ids[i, off:off + length] = torch.tensor(enc.ids, dtype=torch.long)
        mask[i, off:off + length] = 1
        positions[i, off:off + length] = torch.arange(start, start + length)
        seen: dict[int, int] = {}
        for slot, pos in enc.soft:
            k = seen.get(slot, 0)
            seen[slot] = k + 1
            rows.append(i)
            cols.append(off + pos)
            slots.append(slot)
            index.append(k)
        mask_cols.append([off + m for m in enc.masks])

    def t(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    return Batch(ids.to(device), mask.to(device), positions.to(device), t(rows), t(cols),
                 t(slots), t(index), mask_cols, offsets,
                 t([start + len(e) for e in encoded]))


def right_pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded on the right: (ids, mask); empty rows allowed (all padding)."""
    width = max(1, max((len(r) for r in rows), default=1))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, :len(r)] = torch.tensor(list(r), dtype=torch.long)
            mask[i, :len(r)] = 1
    return ids.to(device), mask.to(device)
