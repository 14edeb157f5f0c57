"""The MLLP listener: HL7 v2 ADT in, ``encounter.notified`` out, an ACK for each.

One task per connection; messages on a connection are answered in order, each
after the broker acknowledged its event (``acks=all``). Every bound (frame size,
read timeout, connections in all and per peer address) is enforced on the
connection that breaks it alone: nothing one connection does stops the listener
or delays another's ACKs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from hl7.mllp import HL7StreamProtocol, HL7StreamWriter, InvalidBlockError

from connectors.hl7 import AckCode, Hl7Refused, ack, control_id_of, header, parse, to_encounter
from connectors.hl7.errors import error, rejected
from connectors.mllp import metrics
from connectors.mllp.facilities import FacilityDirectory
from connectors.mllp.framing import FrameReader
from schemas.codes import PARTY_ID_RE
from schemas.events import EncounterNotified, to_bytes
from schemas.topics import Topics

log = logging.getLogger("refnet.mllp")

#: Seconds the rest of an oversized frame is read and dropped before the connection closes.
LINGER = 5.0


class Publisher(Protocol):
    """Stores an event on a topic and returns once the broker acknowledged it."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    topics: Topics
    host: str = "127.0.0.1"
    port: int = 2575
    max_message_bytes: int = 1024 * 1024
    read_timeout: float = 30.0
    max_connections: int = 200
    max_connections_per_peer: int = 20
    time_zone: str = "America/New_York"
    #: seconds a publish may take before the message is answered AE
    publish_timeout: float = 10.0
    #: None: plain TCP. With ``verify_mode`` CERT_REQUIRED, the client's CN must be MSH-4.
    tls: ssl.SSLContext | None = None


class MllpListener:
    def __init__(
        self, config: ListenerConfig, publisher: Publisher, facilities: FacilityDirectory
    ) -> None:
        self.config = config
        self._publisher = publisher
        self._facilities = facilities
        self._zone = ZoneInfo(config.time_zone)
        self._server: asyncio.Server | None = None
        self._open = 0
        self._per_peer: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def mutual_tls(self) -> bool:
        return self.config.tls is not None and self.config.tls.verify_mode == ssl.CERT_REQUIRED

    async def start(self) -> tuple[str, int]:
        """Listen; returns the address bound (the port is the real one for port 0)."""
        loop = asyncio.get_running_loop()

        def factory() -> HL7StreamProtocol:
            reader = FrameReader(self.config.max_message_bytes)
            return HL7StreamProtocol(reader, self._connected, loop=loop)

        self._server = await loop.create_server(
            factory,
            self.config.host,
            self.config.port,
            ssl=self.config.tls,
            ssl_handshake_timeout=self.config.read_timeout if self.config.tls else None,
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def _connected(self, reader: FrameReader, writer: HL7StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _admit(self, peer: str) -> str | None:
        """Why a new connection from ``peer`` is refused, or None to take it."""
        if self._open >= self.config.max_connections:
            return "refused-total"
        if self._per_peer[peer] >= self.config.max_connections_per_peer:
            return "refused-peer"
        self._open += 1
        self._per_peer[peer] += 1
        return None

    def _release(self, peer: str) -> None:
        self._open -= 1
        self._per_peer[peer] -= 1
        if self._per_peer[peer] <= 0:
            del self._per_peer[peer]

    async def _serve(self, reader: FrameReader, writer: HL7StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        peer = str(address[0]) if address else "unknown"
        refused = self._admit(peer)
        metrics.CONNECTIONS.labels(refused or "accepted").inc()
        if refused:
            log.warning("mllp connection from %s refused: %s", peer, refused)
            writer.close()
            return
        metrics.OPEN.inc()
        reason = "error"
        try:
            reason = await self._conversation(reader, writer, _common_name(writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            reason = "reset"
        except asyncio.CancelledError:
            reason = "shutdown"
            raise
        except Exception as exc:  # noqa: BLE001 - a bug closes one connection, not the listener
            log.error("mllp connection from %s failed: %s", peer, type(exc).__name__)
        finally:
            metrics.CLOSED.labels(reason).inc()
            metrics.OPEN.dec()
            self._release(peer)
            log.info("mllp connection from %s closed: %s", peer, reason)
            writer.close()
            with suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)

    async def _conversation(
        self, reader: FrameReader, writer: HL7StreamWriter, common_name: str | None
    ) -> str:
        """Answer frames until the connection ends; returns why it ended."""
        while True:
            try:
                frame = await asyncio.wait_for(reader.readblock(), self.config.read_timeout)
            except TimeoutError:
                return "timeout"
            except asyncio.IncompleteReadError as exc:
                return "eof" if not exc.partial else "eof-in-frame"
            except InvalidBlockError:
                return "unframed"
            except ValueError:  # python-hl7: over the limit, buffer cleared
                await self._refuse_oversized(reader, writer)
                return "too-large"
            started = time.monotonic()
            writer.writeblock(await self.answer(frame, common_name))
            try:
                await asyncio.wait_for(writer.drain(), self.config.read_timeout)
            except TimeoutError:  # a sender that does not read its ACKs
                return "write-timeout"
            metrics.ACK_SECONDS.observe(time.monotonic() - started)

    async def _refuse_oversized(self, reader: FrameReader, writer: HL7StreamWriter) -> None:
        """AR (echoing MSH-10 when the frame's head has it), then the end of the
        connection. The rest of the frame is read and dropped (never buffered) for
        at most LINGER seconds, so that the sender can finish writing and read the
        AR instead of meeting a reset."""
        oversized = rejected("too-large", "the message is larger than the limit")
        metrics.MESSAGES.labels("other", str(AckCode.REJECT)).inc()
        metrics.REFUSALS.labels(oversized.rule).inc()
        log.warning("mllp message answered AR: %s", oversized.rule)
        echo = control_id_of(reader.overrun_head)
        writer.writeblock(ack(None, AckCode.REJECT, oversized.text, echo))
        with suppress(Exception):
            await asyncio.wait_for(writer.drain(), 1)
            if writer.can_write_eof():
                writer.write_eof()
        reader.discard_input()
        with suppress(TimeoutError):
            await asyncio.wait_for(reader.ended.wait(), min(LINGER, self.config.read_timeout))

    async def answer(self, frame: bytes, common_name: str | None = None) -> bytes:
        """The ACK to one frame's payload, after publishing its event when it is taken."""
        message = None
        label = "other"
        try:
            # in a thread: even a bounded message is parsed in up to a tenth of a
            # second, which must not hold up the other connections
            message = await asyncio.to_thread(parse, frame)
            head = header(message)
            label = metrics.type_label(head.message_type, head.trigger)
            facility = await self._sender(head.sending_facility, common_name)
            mapped = to_encounter(message, facility, self._zone)
            await self._publish(facility, mapped.event)
            if mapped.dropped_reasons:
                metrics.DROPPED_REASONS.inc(mapped.dropped_reasons)
            code, text = AckCode.ACCEPT, ""
        except Hl7Refused as refused:
            code, text = refused.code, refused.text
            metrics.REFUSALS.labels(refused.rule).inc()
            log.warning("mllp message answered %s: %s", code, refused.rule)
        except Exception as exc:  # noqa: BLE001 - a bug: AE, the sender retries, the rest goes on
            code, text = AckCode.ERROR, "internal error: send the message again later"
            metrics.REFUSALS.labels("internal").inc()
            log.error("mllp message failed: %s", type(exc).__name__)
        metrics.MESSAGES.labels(label, str(code)).inc()
        return ack(message, code, text)

    async def _sender(self, sending_facility: str, common_name: str | None) -> str:
        """The facility id MSH-4 names, if it is provisioned and, under mutual TLS,
        is the client certificate's CN."""
        facility = sending_facility.lower()
        if not PARTY_ID_RE.fullmatch(facility):
            raise rejected("unknown-facility", "MSH-4 sending facility is not a facility id")
        if self.mutual_tls and (common_name or "").lower() != facility:
            raise rejected("certificate", "MSH-4 sending facility is not the certificate's CN")
        try:
            known = await self._facilities.known(facility)
        except Exception as exc:  # noqa: BLE001 - any failure: the sender retries
            log.warning("mllp: the topic list could not be read: %s", type(exc).__name__)
            raise error("broker", "the network cannot be reached: send the message again") from None
        if not known:
            raise rejected("unknown-facility", "MSH-4 sending facility is not provisioned")
        return facility

    async def _publish(self, facility: str, event: EncounterNotified) -> None:
        topic = self.config.topics.facility_submissions(facility)
        value = to_bytes(event)
        try:
            await asyncio.wait_for(
                self._publisher.publish(topic, event.patient.id.encode("utf-8"), value),
                self.config.publish_timeout,
            )
        except Exception as exc:  # noqa: BLE001 - any failure: the sender retries
            log.warning("mllp: publish failed: %s", type(exc).__name__)
            raise error("broker", "the network could not store the message: resend") from None


def _common_name(writer: HL7StreamWriter) -> str | None:
    """The client certificate's subject CN (mutual TLS), else None."""
    cert: Any = writer.get_extra_info("peercert")
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


__all__ = ["ListenerConfig", "MllpListener", "Publisher"]
