"""Prefix tuning's trained key/values as a transformers cache the model continues from.

peft builds the same cache inside PeftModel.forward but then drops our explicit position
ids; building it here (from peft's PrefixEncoder, same layout) lets the backend keep
left padding, positions and KV-cache reuse identical across methods.

Layout of `prefix.embedding` (n, layers * 2 * kv_dim): for token t, layer l, the key is
columns [(2l) * kv_dim, (2l+1) * kv_dim) and the value the next kv_dim columns, each
(kv_heads, head_dim) row-major (peft's layout; kv_dim = kv_heads * head_dim).
"""

from __future__ import annotations

import torch


class PrefixKV(torch.nn.Module):
    """A peft PrefixEncoder plus the shape facts needed to turn its output into a cache."""

    def __init__(self, encoder: torch.nn.Module, n_tokens: int, n_layers: int, n_heads: int,
                 head_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.n_tokens = n_tokens
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.head_dim = head_dim
        self.register_buffer("indices", torch.arange(n_tokens), persistent=False)

    def flat(self) -> torch.Tensor:
        """(n, layers * 2 * kv_dim): what peft saves as `prompt_embeddings`."""
        return self.encoder(self.indices)

    def cache(self, batch_size: int, dtype: torch.dtype) -> object:
        """A DynamicCache holding the prefix for `batch_size` rows."""
        from transformers import DynamicCache

        kv = self.flat().to(dtype).view(self.n_tokens, self.n_layers * 2, self.n_heads,
                                        self.head_dim)
        kv = kv.permute(1, 2, 0, 3).unsqueeze(1).expand(-1, batch_size, -1, -1, -1)
        return DynamicCache([(kv[2 * i], kv[2 * i + 1]) for i in range(self.n_layers)])
