"""Two small paddle layers the loaded models get: a tied output head and a soft overlay.

`TiedHead`: paddlenlp 2.8's Llama cannot tie its (hidden, vocab) head to the (vocab, hidden)
embedding, so the head multiplies by the embedding's transpose itself; full fine-tuning
then updates one shared matrix, as in torch.

`SoftOverlay`: soft prompts (prompt tuning, P-tuning) replace the embeddings at the
positions `unified_prompt.encoding` marked soft. A hook on the word-embedding layer works
for every architecture, including paddlenlp's BERT (which takes no `inputs_embeds`) and
models wrapped by paddlenlp.peft.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from unified_prompt_paddle.runtime import paddle


def make_tied_head(embedding: Any) -> Any:
    nn = paddle().nn

    class TiedHead(nn.Layer):
        """logits = hidden @ E^T, E the input embedding (not registered twice)."""

        def __init__(self, emb: Any) -> None:
            super().__init__()
            self._emb = [emb]  # a list: not a sublayer, so E is not a second parameter

        def forward(self, hidden_states: Any, tensor_parallel_output: Any = None) -> Any:
            return paddle().matmul(hidden_states, self._emb[0].weight, transpose_y=True)

    return TiedHead(embedding)


def exact_layer_norms(net: Any) -> None:
    """Make every LayerNorm of `net` normalise first, then scale and shift with plain ops.

    paddle 3.3's CPU layer_norm backward drops the scale from the input gradient when the
    scale itself needs no gradient (stop_gradient=True): exactly the frozen base of LoRA,
    prompt, P- and prefix tuning on BERT, ERNIE and GPT-2, whose gradients came out several
    percent off. Normalising without affine parameters and applying them after keeps the
    forward identical and the backward exact.
    """
    pd = paddle()
    functional = pd.nn.functional

    def forward(self: Any, x: Any) -> Any:
        y = functional.layer_norm(x, self._normalized_shape, weight=None, bias=None,
                                  epsilon=self._epsilon)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    for layer in net.sublayers():
        if isinstance(layer, pd.nn.LayerNorm):
            layer.forward = forward.__get__(layer)


class SoftOverlay:
    """Writes soft vectors over marked positions of an embedding layer's output.

    A forward post-hook (not a wrapper) keeps the model's parameter names unchanged, so
    paddlenlp.peft and checkpoints see the architecture they expect.
    """

    def __init__(self, embedding: Any) -> None:
        self._state: tuple[Any, Any] | None = None
        embedding.register_forward_post_hook(self._hook)

    def _hook(self, layer: Any, inputs: Any, output: Any) -> Any:
        if self._state is None:
            return None
        index, table = self._state
        pd = paddle()
        picked = pd.gather(table, pd.clip(index, min=0).flatten()).reshape(output.shape)
        return pd.where((index >= 0).unsqueeze(-1), picked, output)

    @contextmanager
    def active(self, index: Any, table: Any):
        """Inside the block, position (b, t) with index >= 0 embeds as table[index]."""
        self._state = (index, table)
        try:
            yield
        finally:
            self._state = None
