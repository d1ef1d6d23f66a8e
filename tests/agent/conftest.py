"""Fixtures shared by the agent tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.fake_server import FakeCollector


@pytest.fixture
def server() -> Iterator[FakeCollector]:
    """A fake collector on 127.0.0.1 speaking the agent HTTP contract."""
    fake = FakeCollector().start()
    yield fake
    fake.stop()
