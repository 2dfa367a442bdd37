"""Waiting for something that happens on another thread or process, with a deadline."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    read: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 60.0, what: str = ""
) -> T:
    """Poll ``read`` until ``done`` holds for its value; fail with the last value seen."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s}s waiting for {what}: last {value!r}")
        time.sleep(0.1)
        value = read()
    return value
