"""The method registry: one declaration per method, and everything derived from it."""

from __future__ import annotations

import typing

import pytest

from unified_prompt.backend import Backend, Capabilities, ModelInfo, ModelKind, TrainSetup
from unified_prompt.config import ExperimentSpec
from unified_prompt.errors import CapabilityError
from unified_prompt.methods import (
    LOCAL_METHODS,
    METHODS,
    SOFT_SLOT_METHODS,
    FinetuneSpec,
    check_supported,
)
from unified_prompt.testing.conformance import METHOD_SETTINGS


def test_each_method_is_declared_once_under_its_spec_tag():
    for name, info in METHODS.items():
        assert info.name == name
        tag = typing.get_args(info.spec.model_fields["method"].annotation)
        assert tag == (name,), f"{info.spec.__name__}.method must be Literal[{name!r}]"
    union = typing.get_args(typing.get_args(FinetuneSpec)[0])
    assert set(union) == {m.spec for m in METHODS.values()}
    assert LOCAL_METHODS == ("prompt_tuning", "p_tuning", "prefix_tuning", "lora", "full")
    assert SOFT_SLOT_METHODS == ("prompt_tuning", "p_tuning")
    assert set(METHOD_SETTINGS) == set(LOCAL_METHODS), "the conformance suite trains each"


def test_the_spec_accepts_every_registered_method_and_only_those():
    base = {"data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": "{text} {mask}", "verbalizer": {"a": "x", "b": "y"}}}
    for name in METHODS:
        spec = ExperimentSpec.model_validate({**base, "finetune": {"method": name}})
        assert isinstance(spec.finetune, METHODS[name].spec)
    with pytest.raises(ValueError, match="method"):
        ExperimentSpec.model_validate({**base, "finetune": {"method": "adapters"}})


def test_capabilities_answer_from_the_registry():
    caps = Capabilities(methods=frozenset({"lora"}))
    assert caps.supports_method("none") and caps.supports_method("lora")
    assert not caps.supports_method("full") and not caps.supports_method("hosted")
    assert not caps.supports_method("no-such-method")
    hosted = Capabilities(hosted_finetune=frozenset({"supervised"}))
    assert hosted.supports_method("hosted") and not hosted.supports_method("lora")
    with pytest.raises(CapabilityError, match=r"'x' cannot train finetune.method 'full' "
                                              r"\(it can: hosted, lora\)"):
        check_supported("full", backend="x", local=frozenset({"lora"}),
                        hosted=frozenset({"dpo"}))


class _Bare(Backend):
    """A backend that trusts whatever method it is handed."""

    name = "bare"
    capabilities = Capabilities(methods=frozenset({"lora"}))

    def load_model(self, ref: str) -> str:
        return ref

    def model_info(self, model: str) -> ModelInfo:
        return ModelInfo(name=model, kind=ModelKind.CAUSAL)

    def start_training(self, model, setup):  # type: ignore[override]
        return ("started", setup.method.method)


def test_start_training_refuses_an_undeclared_method_before_the_backend_sees_it():
    from unified_prompt.methods import FullSpec, LoraSpec

    backend = _Bare()
    lora = TrainSetup(method=LoraSpec(method="lora"), task="classification", seed=0)
    assert backend.start_training(None, lora) == ("started", "lora")
    full = TrainSetup(method=FullSpec(method="full"), task="classification", seed=0)
    with pytest.raises(CapabilityError, match=r"'bare' cannot train finetune\.method 'full'"):
        backend.start_training(None, full)
