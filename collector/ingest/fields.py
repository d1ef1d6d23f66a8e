"""Field types for validating what agents send: every string and list capped, unknown fields refused."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Str = Annotated[str, StringConstraints(max_length=256)]
Text = Annotated[str, StringConstraints(max_length=4096)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Mac = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")]
Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]  # what a BIGINT column (and SQLite) can hold
Port = Annotated[int, Field(ge=0, le=65535)]


class Strict(BaseModel):
    """Base of every agent-facing model: unknown fields are an error, values are frozen.

    NaN and Infinity are refused: JSON has no such numbers, PostgreSQL's jsonb cannot store them, and
    a comparison with NaN is always false, so a rule would silently never match.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
