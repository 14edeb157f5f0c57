from __future__ import annotations

import pytest

from schemas.topics import Topics


@pytest.fixture
def topics() -> Topics:
    return Topics()
