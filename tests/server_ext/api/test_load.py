"""The load suite in its quick form as a test: 64 users streaming below the limit are all
served, 200 users past it get clear 429s and nothing else fails, and the server's memory does
not grow. The full form: python -m bench load (README, Performance)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1200)
def test_64_and_200_users_streaming_are_served_or_told_to_retry():
    from bench import suite_load

    result = suite_load.run(quick=True)
    print("\n".join(f"{row}" for row in result.rows))
    assert [row["users"] for row in result.rows] == [64, 200]
    assert all(row["served"] > 0 for row in result.rows), result.rows
    for goal in result.goals:
        assert goal.met, (goal, result.rows, result.details)
