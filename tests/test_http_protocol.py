"""A response's head and body leave in one write; a head with no body after it is not held past the loop's pass."""

from __future__ import annotations

import asyncio

from psiturk_async.http_protocol import HeadHoldingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """The edge of the world here: what would go to the socket, one entry a write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_a_head_and_its_body_are_one_write() -> None:
    recording = RecordingTransport()
    transport = HeadHoldingTransport(recording, asyncio.get_running_loop())
    transport.write(HEAD)
    assert recording.writes == []
    transport.write(b"ok")
    assert recording.writes == [HEAD + b"ok"]
    await asyncio.sleep(0)  # the safety net finds nothing left to send
    assert recording.writes == [HEAD + b"ok"]


async def test_a_head_alone_goes_out_at_the_end_of_the_pass() -> None:
    recording = RecordingTransport()
    transport = HeadHoldingTransport(recording, asyncio.get_running_loop())
    transport.write(HEAD)
    assert transport.get_write_buffer_size() == len(HEAD)
    await asyncio.sleep(0)
    assert recording.writes == [HEAD]


async def test_closing_sends_a_held_head_first_and_other_writes_pass_straight_through() -> None:
    recording = RecordingTransport()
    transport = HeadHoldingTransport(recording, asyncio.get_running_loop())
    transport.write(b"a chunk of a streamed body")
    assert recording.writes == [b"a chunk of a streamed body"]
    transport.write(HEAD)
    transport.close()
    assert recording.writes[-1] == HEAD and recording.closed
