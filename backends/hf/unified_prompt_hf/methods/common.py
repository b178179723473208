"""Helpers the prompt-learning methods share: peft configs filled from the model, slot sizes,
and copies of a base model that share its frozen weights."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from unified_prompt.encoding import soft_counts
from unified_prompt.errors import UserInputError
from unified_prompt.prompts.segments import Rendered

if TYPE_CHECKING:
    from unified_prompt.backend import TrainSetup
    from unified_prompt_hf.handle import HFModel


def task_type(handle: HFModel) -> Any:
    """CAUSAL_LM, SEQ_2_SEQ_LM, or FEATURE_EXTRACTION for masked LMs (peft has no masked-LM
    task type)."""
    from peft import TaskType

    if handle.seq2seq:
        return TaskType.SEQ_2_SEQ_LM
    return TaskType.CAUSAL_LM if handle.causal else TaskType.FEATURE_EXTRACTION


def prompt_config(cls: Any, handle: HFModel, n_tokens: int, **kwargs: Any) -> Any:
    """A peft prompt-learning config with layers/dims/heads read from the model's config."""
    from peft.utils import _prepare_prompt_learning_config

    config = cls(task_type=task_type(handle), num_virtual_tokens=n_tokens,
                 num_transformer_submodules=1, base_model_name_or_path=str(handle.path),
                 **kwargs)
    return _prepare_prompt_learning_config(config, handle.module.config)


def slot_counts(handle: HFModel, setup: TrainSetup) -> dict[int, int]:
    """Virtual tokens per slot, counted exactly as the core's encoding counts them."""
    if not setup.soft_slots:
        raise UserInputError(f"{setup.method.method} needs {{soft}} slots in the template")
    probe = Rendered.of(list(setup.soft_slots))
    return soft_counts(probe, handle.codec.encode_text)


def shared_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of the module tree that reuses the original parameters and buffers.

    peft injects layers in place; injecting into this copy leaves the caller's model (and
    its numbers) untouched, while the weights themselves are not duplicated in memory.
    """
    memo: dict[int, Any] = {id(p): p for p in module.parameters()}
    memo.update({id(b): b for b in module.buffers()})
    return copy.deepcopy(module, memo)


def text_init(handle: HFModel, text: str, n_tokens: int) -> torch.Tensor:
    """Embeddings of `text`'s tokens, repeated or cut to `n_tokens` rows (peft's TEXT init,
    but tokenized without special tokens, as the core counts the slot)."""
    ids = handle.codec.encode_text(text) or [handle.codec.pad]
    ids = (ids * (n_tokens // len(ids) + 1))[:n_tokens]
    weight = handle.module.get_input_embeddings().weight
    return weight[torch.tensor(ids, device=weight.device)].detach().float().clone()
