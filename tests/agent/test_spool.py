"""The disk spool: events come out in the order they went in, across restarts and segment files;
a torn write is cut off; a full spool refuses whole batches; one process owns a directory."""

import tempfile
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.agent.publisher import Outgoing
from driftline.agent.spool import Spool, SpoolError, SpoolFull

outgoing = st.builds(
    Outgoing,
    event_id=st.uuids(),
    key=st.binary(max_size=40),
    value=st.binary(min_size=1, max_size=300),
    # None: a frame as an agent from before the event-type header wrote it
    event_type=st.one_of(st.none(), st.sampled_from(["decision", "drift_detected"])),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(outgoing, min_size=1, max_size=8)),
        st.tuples(st.just("drain"), st.integers(1, 10), st.integers(0, 10)),
        st.tuples(st.just("reopen")),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_spool_behaves_like_a_queue_across_restarts(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        spool = Spool(path, max_bytes=10**7, segment_bytes=700)  # small: many segment files
        model: deque[Outgoing] = deque()
        for op in ops:
            if op[0] == "append":
                spool.append(op[1])
                model.extend(op[1])
            elif op[0] == "drain":
                peeked = spool.peek(op[1])
                assert peeked == list(model)[: op[1]]
                delivered = min(op[2], len(peeked))
                spool.commit(delivered)
                for _ in range(delivered):
                    model.popleft()
            else:
                spool.close()
                spool = Spool(path, max_bytes=10**7, segment_bytes=700)
            assert spool.count == len(model)
        assert spool.peek(10_000) == list(model)
        spool.close()
        if not model:
            assert list(path.glob("*.seg")) == []


def item(n: int) -> Outgoing:
    return Outgoing(uuid.uuid4(), f"k{n}".encode(), b"v" * 50, "decision")


def test_a_torn_last_write_is_cut_off_and_the_rest_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    spool.append([item(n) for n in range(3)])
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    whole = segment.read_bytes()
    segment.write_bytes(whole[:-10])  # the process died in the middle of the third frame

    reopened = Spool(tmp_path, max_bytes=10**6)
    assert reopened.count == 2
    reopened.append([item(9)])
    assert [i.key for i in reopened.peek(10)] == [b"k0", b"k1", b"k9"]


def test_a_corrupted_frame_is_never_sent(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    spool.append([item(0), item(1)])
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[-5] ^= 0xFF  # a flipped bit in the last frame's value
    segment.write_bytes(bytes(data))

    assert [i.key for i in Spool(tmp_path, max_bytes=10**6).peek(10)] == [b"k0"]


def test_a_full_spool_refuses_the_whole_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=400)
    spool.append([item(0), item(1)])
    with pytest.raises(SpoolFull, match="full"):
        spool.append([item(2), item(3), item(4)])
    assert spool.count == 2
    spool.commit(len(spool.peek(2)))
    spool.append([item(2), item(3), item(4)])
    assert spool.count == 3


def test_one_process_at_a_time_owns_a_spool(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=10**6)
    with pytest.raises(SpoolError, match="in use by another process"):
        Spool(tmp_path, max_bytes=10**6)
    first.close()
    Spool(tmp_path, max_bytes=10**6).close()


def test_oldest_age_follows_the_oldest_event(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    assert spool.oldest_age_s() == 0.0
    spool.append([item(0)])
    assert 0.0 <= spool.oldest_age_s() < 5.0
    spool.commit(len(spool.peek(1)))
    assert spool.oldest_age_s() == 0.0
