"""Schemathesis hooks for tests/hostile/test_schemathesis.py, loaded by the CLI through ``SCHEMATHESIS_HOOKS``.

Random ids almost never name a stored row, so the fuzzer would mostly meet 404s; half the time an id in
a path becomes one of the seeded rows' ids (``KHIEN_FUZZ_REAL_IDS``, of either unit), so the code
behind the lookup runs on hostile input too.
"""

from __future__ import annotations

import os
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

REAL_IDS = sorted({int(x) for x in os.environ.get("KHIEN_FUZZ_REAL_IDS", "").split(",") if x.strip()})


@schemathesis.hook
def flatmap_path_parameters(_context: schemathesis.HookContext, path_parameters: dict[str, Any] | None):
    if not isinstance(path_parameters, dict):  # an operation without path parameters
        return st.just(path_parameters)
    names = [k for k, v in path_parameters.items() if k.endswith("_id") and isinstance(v, int)]
    if not names or not REAL_IDS:
        return st.just(path_parameters)
    real = st.fixed_dictionaries({k: st.sampled_from(REAL_IDS) for k in names})
    return st.one_of(st.just(path_parameters), real.map(lambda ids: path_parameters | ids))


# Only the enrollment exchange (and the public ops routes) may succeed for a caller with no credential.
OPEN = re.compile(r"^(/api/v1/agent/enroll|/healthz|/metrics|/openapi\.json)$")


@schemathesis.check
def refused_without_credential(_ctx: schemathesis.CheckContext, response: schemathesis.Response,
                               case: schemathesis.Case) -> bool | None:
    """Run without any credential: a 2xx/3xx from anything but the open operations is a hole."""
    if not OPEN.match(case.operation.path) and response.status_code < 400:
        raise AssertionError(f"{case.operation.label} answered {response.status_code} to a caller with no "
                             "credential")
    return None
