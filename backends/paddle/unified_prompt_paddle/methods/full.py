"""Full fine-tuning on a copy of the network; canonical names are the Hugging Face ones.

Only parameters of the checkpoint train (paddlenlp's unused BERT pooler does not); a tied
output head is the embedding itself, so it is one parameter, as in torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unified_prompt.backend import TrainSetup
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.layers import SoftOverlay
from unified_prompt_paddle.layouts import full_entries
from unified_prompt_paddle.loading import clone_net
from unified_prompt_paddle.methods.bindings import Bindings, bind, load_state


def wrap(model: PaddleModel) -> tuple[PaddleModel, Bindings]:
    net = clone_net(model)
    bindings = bind(net, full_entries(model.rules))
    for p in net.parameters():
        p.stop_gradient = True
    for b in bindings.values():
        b.param.stop_gradient = False
    handle = model.derive(net=net, overlay=SoftOverlay(net.get_input_embeddings()),
                          method="full", method_config={})
    return handle, bindings


def attach(model: PaddleModel, setup: TrainSetup, rng: np.random.Generator
           ) -> tuple[PaddleModel, Bindings]:
    return wrap(model)


def from_state(model: PaddleModel, config: dict[str, Any], state: dict[str, np.ndarray]
               ) -> PaddleModel:
    handle, bindings = wrap(model)
    load_state(bindings, state)
    for b in bindings.values():
        b.param.stop_gradient = True
    handle.net.eval()
    return handle
