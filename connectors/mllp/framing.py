"""python-hl7's MLLP stream reader, bounded for untrusted senders.

:class:`hl7.mllp.HL7StreamReader` frames (``readblock``) with its ``limit`` as
the largest frame: past it, its buffer is cleared and ``ValueError`` raised, so
an oversized frame is never held whole. This subclass adds two things:

- the first bytes of an oversized frame are kept (``overrun_head``) so that its
  AR can echo MSH-10;
- :meth:`discard_input` drops the rest of an oversized frame as it comes;
- bytes that do not begin a frame (anything but ``<VT>`` where a frame must
  start; line ends between frames are tolerated) fail the next read at once with
  :class:`hl7.mllp.InvalidBlockError`, instead of waiting for a frame end that
  may never come.
"""

from __future__ import annotations

import asyncio
from asyncio import LimitOverrunError
from typing import Final

from hl7.mllp import HL7StreamReader, InvalidBlockError
from hl7.mllp.streams import START_BLOCK

#: How much of an oversized frame is kept to read its MSH segment.
HEAD_BYTES: Final = 4096


class FrameReader(HL7StreamReader):  # type: ignore[misc]
    def __init__(self, limit: int) -> None:
        super().__init__(limit=limit)
        self.overrun_head = b""
        self._discarding = False
        #: set when the peer has closed (or reset) while input is being discarded
        self.ended = asyncio.Event()

    def discard_input(self) -> None:
        """From now on, drop whatever arrives (the end of an oversized frame)."""
        self._discarding = True
        self._buffer.clear()
        self._maybe_resume_transport()

    def feed_eof(self) -> None:
        self.ended.set()
        super().feed_eof()

    def set_exception(self, exc: BaseException) -> None:
        if self._discarding:
            self.ended.set()
        super().set_exception(exc)

    def feed_data(self, data: bytes) -> None:
        if self._discarding:
            return
        if not self._buffer:  # the next byte starts a frame (readblock consumes whole frames)
            data = data.lstrip(b"\r\n")
            if not data:
                return
            if data[:1] != START_BLOCK:
                self.set_exception(InvalidBlockError("data outside an MLLP frame"))
                return
        super().feed_data(data)

    async def readblock(self) -> bytes:
        # what follows the previous frame in the same read: line ends are skipped,
        # anything else but a frame's start is refused now
        while self._buffer[:1] in (b"\r", b"\n"):
            del self._buffer[:1]
        if self._buffer and self._buffer[:1] != START_BLOCK:
            raise InvalidBlockError("data outside an MLLP frame")
        return bytes(await super().readblock())

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        try:
            return bytes(await super().readuntil(separator))
        except LimitOverrunError:
            self.overrun_head = bytes(self._buffer[:HEAD_BYTES])
            raise


__all__ = ["HEAD_BYTES", "FrameReader"]
