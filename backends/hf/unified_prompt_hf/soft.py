"""Virtual tokens for template slots, held in peft's own modules.

peft's PeftModel only prepends virtual tokens; a template may put them anywhere
(`{soft:4} {text} It was {mask}. {soft:2}`), so the backend keeps one peft module per slot
(PromptEmbedding for prompt tuning, PromptEncoder for P-tuning) and writes their outputs
into `inputs_embeds` at the positions the core's encoding assigned.
"""

from __future__ import annotations

import torch


class SoftSlot(torch.nn.Module):
    """One slot: a peft prompt module and its token count; forward() -> (n, hidden)."""

    def __init__(self, encoder: torch.nn.Module, n_tokens: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.n_tokens = n_tokens
        self.register_buffer("indices", torch.arange(n_tokens), persistent=False)

    def forward(self) -> torch.Tensor:
        return self.encoder(self.indices)


class SoftPrompts(torch.nn.Module):
    """Every soft slot of a template, keyed by slot ordinal."""

    def __init__(self, slots: dict[int, SoftSlot]) -> None:
        super().__init__()
        self.slots = torch.nn.ModuleDict({str(k): v for k, v in sorted(slots.items())})

    def counts(self) -> dict[int, int]:
        return {int(k): int(v.n_tokens) for k, v in self.slots.items()}

    def embeddings(self) -> dict[int, torch.Tensor]:
        """(n, hidden) output per slot (the P-tuning encoder runs once per call)."""
        return {int(k): v() for k, v in self.slots.items()}

    def table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All slots stacked (sum n, hidden), and each slot's first row (max slot + 1,)."""
        outs = self.embeddings()
        order = sorted(outs)
        starts = torch.zeros(max(order) + 1, dtype=torch.long)
        at = 0
        for k in order:
            starts[k] = at
            at += outs[k].shape[0]
        return torch.cat([outs[k] for k in order], dim=0), starts
