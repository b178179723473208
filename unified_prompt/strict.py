"""The base of every section of the experiment spec: an unknown key is an error."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: Seeds every framework accepts (numpy's and torch's generators take 0 .. 2**32 - 1).
Seed = Annotated[int, Field(ge=0, lt=2**32)]
#: An upper bound for sizes that become tensor dimensions (rank, virtual tokens, widths):
#: far above any useful value, and below what makes a framework fail to allocate.
MAX_DIM = 65_536


class Strict(BaseModel):
    # NaN and infinity are refused everywhere: `lr: .inf` is a typo, never a setting.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
