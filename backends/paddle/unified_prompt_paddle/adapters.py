"""The backend's save_adapter / load_adapter: paddle-native folders, and hf folders too.

`load_adapter` reads either format (an adapter trained by the hf backend loads directly,
converted in memory); `save_adapter` writes the paddle-native files (paddle_format).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unified_prompt.errors import UserInputError
from unified_prompt_paddle import paddle_format
from unified_prompt_paddle.adapter_data import AdapterData
from unified_prompt_paddle.convert import read_adapter
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.methods import module_for


def save_adapter(model: PaddleModel, state: dict[str, np.ndarray], path: Path) -> None:
    data = AdapterData(model.method, dict(model.method_config), state)
    paddle_format.write(path, data, model.hf_config, model.arch, base_name=str(model.folder))


def apply(model: PaddleModel, data: AdapterData) -> PaddleModel:
    """`model` (a base handle) with the adapter's weights attached, in eval mode."""
    module = module_for(data.method)
    if module is None:
        raise UserInputError(f"unknown adapter method {data.method!r}")
    handle = module.from_state(model, data.config, data.state)
    handle.train(False)
    return handle


def load_adapter(model: PaddleModel, path: Path) -> PaddleModel:
    if not path.is_dir():
        raise UserInputError(f"{path}: no such adapter folder")
    if model.method != "none":
        raise UserInputError("load an adapter onto the base model, not onto a trained one")
    return apply(model, read_adapter(path, model.hf_config))
