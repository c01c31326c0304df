"""One gRPC call on a bare HTTP/2 connection, framed by hand (hyperframe, hpack): its last
bytes can be held back for as long as a test needs, even after the server's GOAWAY, which h2's
state machine would treat as the end of the connection rather than of new streams."""

import socket
import struct
from collections.abc import Callable

from hpack import Decoder, Encoder
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
STREAM = 1
FRAME_SIZE = 16_384


class HeldCall:
    """A unary gRPC call sent but for its last ``held_back`` bytes: started, not finished.

    A PING follows the first bytes; HTTP/2 frames are read in order, so once the server answers
    it, the server has the call. The message must fit the stream's first window (64 KiB).
    """

    def __init__(self, port: int, method: str, message: bytes, held_back: int = 100) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30.0)
        self.decoder = Decoder()
        self.goaway_last_stream: int | None = None
        self.header_blocks: list[dict[str, str]] = []
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method),
            (":authority", f"127.0.0.1:{port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        header_block = HeadersFrame(STREAM, data=Encoder().encode(headers), flags=["END_HEADERS"])
        framed = b"\x00" + struct.pack(">I", len(message)) + message
        sent, self.held = framed[:-held_back], framed[-held_back:]
        chunks = [sent[start : start + FRAME_SIZE] for start in range(0, len(sent), FRAME_SIZE)]
        frames = [SettingsFrame(0), header_block, *(DataFrame(STREAM, data=c) for c in chunks)]
        frames.append(PingFrame(0, opaque_data=b"in-call!"))
        self.socket.sendall(PREFACE + b"".join(frame.serialize() for frame in frames))
        self._read_until(lambda frame: isinstance(frame, PingFrame) and "ACK" in frame.flags)

    def finish(self) -> tuple[dict[str, str], bytes]:
        """Send the held bytes; the trailers and the response message."""
        self.socket.sendall(DataFrame(STREAM, data=self.held, flags=["END_STREAM"]).serialize())
        frames = self._read_until(
            lambda frame: frame.stream_id == STREAM and "END_STREAM" in frame.flags
        )
        self.socket.close()
        data = b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id)
        return self.header_blocks[-1], data[5:]

    def _read_until(self, done: Callable[[Frame], bool]) -> list[Frame]:
        frames: list[Frame] = []
        while not frames or not done(frames[-1]):
            frame = self._read_frame()
            frames.append(frame)
            if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                self.socket.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
            if isinstance(frame, GoAwayFrame):
                self.goaway_last_stream = frame.last_stream_id
            if isinstance(frame, HeadersFrame):
                # Every block, in order: HPACK's table depends on all that came before.
                self.header_blocks.append(dict(self.decoder.decode(frame.data)))
        return frames

    def _read_frame(self) -> Frame:
        frame, length = Frame.parse_frame_header(memoryview(self._read_exactly(9)))
        frame.parse_body(memoryview(self._read_exactly(length)))
        return frame

    def _read_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.socket.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the server closed the connection mid-call")
            data += chunk
        return data
