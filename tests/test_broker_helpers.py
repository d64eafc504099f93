"""What the plugin API gives brokers besides the seam: a request's failure carried to the node
that asked and raised there as it was raised here, and the degraded reason of a component."""

from __future__ import annotations

import pytest

from stelar_core.plugin_api import (
    AckError,
    AckTimeout,
    ErrorCode,
    NotConnected,
    Problems,
    request_error,
    request_failure,
)


@pytest.mark.parametrize(
    "raised",
    [AckError(ErrorCode.INVALID_PAYLOAD, "bad"), AckTimeout("no answer in 2.0s"), NotConnected("gone")],
)
def test_a_request_failure_travels_as_code_and_message_and_comes_back_the_same(raised):
    code, message = request_failure(raised)
    again = request_error(code, message)
    assert type(again) is type(raised) and str(again) == str(raised)
    if isinstance(raised, AckError):
        assert (again.code, again.message) == (raised.code, raised.message)


def test_problems_summarise_what_is_wrong_and_say_when_the_summary_changed():
    problems = Problems()
    assert not problems and problems.summary is None
    assert problems.record("pubsub", "closed") is True
    assert problems.record("pubsub", "closed") is False  # the same again: nothing to report
    assert problems.record("commands", "timeout") is True
    assert problems and problems.summary == "commands: timeout; pubsub: closed"
    assert problems.record("pubsub", None) is True and problems.summary == "commands: timeout"
    assert problems.record("pubsub", None) is False
    assert problems.record("commands", None) is True and problems.summary is None and not problems
