"""A disk spool of encoded events: append-only segment files, drained oldest first.

Events go here when Kafka is unreachable or slow and come out in the order they went in, also
after the process was killed and started again. Every frame carries a CRC32C, so a write torn by
a crash is found and cut off, never sent. A cursor file says how far draining got; it is
replaced atomically after each delivered batch, so a crash can at worst send a batch twice,
which the collector absorbs by ``event_id``. One process at a time owns a spool directory; in
it, one lock serialises the threads that append and the one that drains.

A write the disk refuses (full, or an I/O error) is cut back off the segment and raised as
``SpoolWriteError``: the spool stays readable and usable as soon as the disk is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Literal

import crc32c

from driftline.agent.labels import EventLabels, of_wire
from driftline.agent.logs import agent_logger
from driftline.agent.publisher import Outgoing

log = agent_logger(__name__)

FsyncPolicy = Literal["always", "never"]

# A frame: length and CRC32C of the rest, then enqueue time, event id, key length, key, value.
# A frame with the event type (for its Kafka header) has the top bit of its length set, and
# the type's length after the key's, the type after the key; frames from before have neither.
HEADER = struct.Struct("<II")
META = struct.Struct("<Q16sH")
TYPED = 1 << 31
TYPED_META = struct.Struct("<Q16sHB")
SEGMENT_SUFFIX = ".seg"


class SpoolError(Exception):
    pass


class SpoolFull(SpoolError):
    pass


class SpoolWriteError(SpoolError):
    """The disk refused a write (no space left, an I/O error): nothing of the batch was kept."""


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = 8 * 1024 * 1024,
        fsync: FsyncPolicy = "always",
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = (directory / "lock").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SpoolError(
                f"spool directory {directory} is in use by another process; "
                "give each agent its own (DRIFTLINE_SPOOL_DIR)"
            ) from None
        self._cursor_file = directory / "cursor"
        self._segments = sorted(int(p.stem) for p in directory.glob(f"*{SEGMENT_SUFFIX}"))
        self._read_segment, self._read_offset = self._load_cursor()
        self.count = 0
        self.found: Counter[EventLabels] = Counter()  # what it held at start, for the counters
        self._oldest_ns: int | None = None
        self._recover()
        self._writer: IO[bytes] | None = None
        self._peeked: list[tuple[int, int]] = []
        self._mutex = threading.Lock()
        self._bytes = self._measured_bytes()
        self._cursor_saved = True

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def oldest_age_s(self) -> float:
        """Age of the oldest spooled event, 0 when the spool is empty."""
        if self._oldest_ns is None:
            return 0.0
        return max(0.0, (time.time_ns() - self._oldest_ns) / 1e9)

    def append(self, items: Sequence[Outgoing]) -> None:
        """Write all of ``items`` or none of them: SpoolFull if they do not fit under
        ``max_bytes``, SpoolWriteError if the disk refuses them."""
        if not items:
            return
        now = time.time_ns()
        data = b"".join(_frame(item, now) for item in items)
        with self._mutex:
            if self.size_bytes + len(data) > self.max_bytes:
                raise SpoolFull(f"spool at {self.directory} is full ({self.max_bytes} bytes)")
            self._write(data)
            self.count += len(items)
            if self._oldest_ns is None:
                self._oldest_ns = now

    def _write(self, data: bytes) -> None:
        """Append ``data`` to the open segment, or raise SpoolWriteError having cut the segment
        back to where it was: a torn frame left mid-segment would hide every frame after it."""
        try:
            writer = self._writable()
            start = writer.tell()
        except OSError as error:
            raise SpoolWriteError(f"spool at {self.directory} cannot be written: {error}") from None
        try:
            writer.write(data)
            writer.flush()
            if self._fsync == "always":
                os.fsync(writer.fileno())
        except OSError as error:
            self._cut_back(start)
            raise SpoolWriteError(f"spool at {self.directory} cannot be written: {error}") from None
        self._bytes += len(data)
        if writer.tell() >= self._segment_bytes:
            self._roll()

    def _cut_back(self, length: int) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            # Its buffer may still hold part of the batch: the truncation below drops it.
            with contextlib.suppress(OSError):
                writer.close()
        path = self._path(self._segments[-1])
        try:
            os.truncate(path, length)
        except OSError as error:  # the segment keeps a torn tail; a new one starts clean
            log.error("spool segment could not be cut back", segment=str(path), error=str(error))
            self._segments.append(self._segments[-1] + 1)
            self._bytes = self._measured_bytes()

    def peek(self, limit: int) -> list[Outgoing]:
        """The oldest events, up to ``limit``, without removing them."""
        with self._mutex:
            return self._peek(limit)

    def _peek(self, limit: int) -> list[Outgoing]:
        items: list[Outgoing] = []
        self._peeked = []
        for segment in self._segments:
            if segment < self._read_segment:
                continue
            start = self._read_offset if segment == self._read_segment else 0
            with self._path(segment).open("rb") as reader:
                reader.seek(start)
                while len(items) < limit:
                    decoded = _read_frame(reader)
                    if decoded is None:
                        break
                    items.append(decoded[0])
                    self._peeked.append((segment, reader.tell()))
            if len(items) >= limit:
                break
        return items

    def commit(self, count: int) -> None:
        """The first ``count`` events of the last ``peek`` were delivered: forget them."""
        if count <= 0:
            return
        with self._mutex:
            self._commit(count)

    def _commit(self, count: int) -> None:
        self._read_segment, self._read_offset = self._peeked[count - 1]
        self._peeked = []
        self.count -= count
        if self.count == 0:
            self._empty()
            return
        self._save_cursor()
        if self._at_end_of_closed_segment():
            self._read_segment, self._read_offset = self._read_segment + 1, 0
            self._save_cursor()
        finished = [s for s in self._segments if s < self._read_segment]
        for segment in finished:
            self._bytes -= self._size_of(segment)
            self._path(segment).unlink(missing_ok=True)
            self._segments.remove(segment)
        self._oldest_ns = self._first_enqueued_ns()

    def _empty(self) -> None:
        """Everything was delivered: start afresh past the last segment."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        next_segment = (self._segments[-1] + 1) if self._segments else self._read_segment
        for segment in self._segments:
            self._path(segment).unlink(missing_ok=True)
        self._segments = []
        self._bytes = 0
        self._read_segment, self._read_offset = next_segment, 0
        self._save_cursor()
        self._oldest_ns = None

    def close(self) -> None:
        with self._mutex:
            if self._writer is not None:
                try:
                    self._writer.close()
                except OSError as error:  # what it could not write was reported as failed
                    log.error("spool could not be closed cleanly", error=str(error))
                self._writer = None
            self._lock.close()

    def _writable(self) -> IO[bytes]:
        if self._writer is None:
            if not self._segments:
                self._segments.append(self._read_segment)
            self._writer = self._path(self._segments[-1]).open("ab")
        return self._writer

    def _roll(self) -> None:
        """Start the next segment; if the disk will not have it, go on with this one."""
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        try:
            self._writer = self._path(self._segments[-1] + 1).open("ab")
        except OSError as error:
            log.warning("spool segment not started; the current one grows", error=str(error))
            return
        self._segments.append(self._segments[-1] + 1)

    def _measured_bytes(self) -> int:
        return sum(self._size_of(segment) for segment in self._segments)

    def _size_of(self, segment: int) -> int:
        try:
            return self._path(segment).stat().st_size
        except FileNotFoundError:
            return 0

    def _at_end_of_closed_segment(self) -> bool:
        return (
            self._read_segment != self._segments[-1]
            and self._read_offset >= self._path(self._read_segment).stat().st_size
        )

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{SEGMENT_SUFFIX}"

    def _load_cursor(self) -> tuple[int, int]:
        try:
            segment, offset = self._cursor_file.read_text().split()
            return int(segment), int(offset)
        except (FileNotFoundError, ValueError):
            return (self._segments[0] if self._segments else 0), 0

    def _save_cursor(self) -> None:
        """Say on disk how far draining got. If the disk refuses, the old cursor stays: a
        restart would send some events again, which the collector absorbs by event id."""
        partial = self._cursor_file.with_suffix(".tmp")
        try:
            partial.write_text(f"{self._read_segment} {self._read_offset}")
            os.replace(partial, self._cursor_file)
        except OSError as error:
            if self._cursor_saved:
                log.error("spool cursor not saved; a restart may resend", error=str(error))
            self._cursor_saved = False
            return
        self._cursor_saved = True

    def _recover(self) -> None:
        """Count what is left to send (by service and model too) and cut off a frame torn by
        a crash."""
        for segment in list(self._segments):
            if segment < self._read_segment:
                self._path(segment).unlink(missing_ok=True)
                self._segments.remove(segment)
                continue
            start = self._read_offset if segment == self._read_segment else 0
            path = self._path(segment)
            with path.open("rb") as reader:
                reader.seek(start)
                good_end = start
                while (decoded := _read_frame(reader)) is not None:
                    self.count += 1
                    self.found[of_wire(decoded[0].value)] += 1
                    good_end = reader.tell()
            if good_end < path.stat().st_size:
                log.warning(
                    "spool segment ends in a torn frame; cut off",
                    segment=str(path),
                    bytes_cut=path.stat().st_size - good_end,
                )
                os.truncate(path, good_end)
        self._oldest_ns = self._first_enqueued_ns()
        if self.count:
            log.info("spool holds events from before; draining them", count=self.count)

    def _first_enqueued_ns(self) -> int | None:
        if self.count == 0:
            return None
        for segment in self._segments:
            if segment < self._read_segment:
                continue
            with self._path(segment).open("rb") as reader:
                reader.seek(self._read_offset if segment == self._read_segment else 0)
                decoded = _read_frame(reader)
                if decoded is not None:
                    return decoded[1]
        return None


def _frame(item: Outgoing, enqueued_ns: int) -> bytes:
    if item.event_type is None:
        rest = META.pack(enqueued_ns, item.event_id.bytes, len(item.key)) + item.key + item.value
        return HEADER.pack(len(rest), crc32c.crc32c(rest)) + rest
    event_type = item.event_type.encode()
    meta = TYPED_META.pack(enqueued_ns, item.event_id.bytes, len(item.key), len(event_type))
    rest = meta + item.key + event_type + item.value
    return HEADER.pack(len(rest) | TYPED, crc32c.crc32c(rest)) + rest


def _read_frame(reader: IO[bytes]) -> tuple[Outgoing, int] | None:
    """The next whole frame and its enqueue time, or None at the end or at a torn frame."""
    header = reader.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    length, checksum = HEADER.unpack(header)
    typed, length = length & TYPED, length & ~TYPED
    meta = TYPED_META if typed else META
    rest = reader.read(length)
    if len(rest) < length or crc32c.crc32c(rest) != checksum or length < meta.size:
        return None
    if typed:
        enqueued_ns, event_id, key_length, type_length = TYPED_META.unpack_from(rest)
    else:
        (enqueued_ns, event_id, key_length), type_length = META.unpack_from(rest), 0
    key_end = meta.size + key_length
    value_start = key_end + type_length
    item = Outgoing(
        event_id=uuid.UUID(bytes=event_id),
        key=rest[meta.size : key_end],
        value=rest[value_start:],
        event_type=rest[key_end:value_start].decode() if typed else None,
    )
    return item, enqueued_ns
