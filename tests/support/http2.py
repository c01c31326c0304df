"""gRPC on bare HTTP/2 connections, framed by hand (hyperframe, hpack): a call whose last bytes
are held back for as long as a test needs, even after the server's GOAWAY (which h2's state
machine would treat as the end of the connection rather than of new streams); a message sent
as fast as flow control lets it, but for its last byte; a connection that sends only part of
its preface, or nothing."""

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable

from hpack import Decoder, Encoder
from hyperframe.frame import (
    DataFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
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
        self.header_blocks: list[dict[str, str]] = []
        headers = Encoder().encode(call_headers(port, method))
        header_block = HeadersFrame(STREAM, data=headers, flags=["END_HEADERS"])
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
            if isinstance(frame, HeadersFrame):
                # Every block, in order: HPACK's table depends on all that came before.
                self.header_blocks.append(dict(self.decoder.decode(frame.data)))
        return frames

    def _read_frame(self) -> Frame:
        return read_frame(self.socket)


def read_exactly(connection: socket.socket, size: int) -> bytes:
    """``size`` bytes, or ConnectionError if the server closes the connection first."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return data


def read_frame(connection: socket.socket) -> Frame:
    """The next frame the server sends."""
    frame, length = Frame.parse_frame_header(memoryview(read_exactly(connection, 9)))
    frame.parse_body(memoryview(read_exactly(connection, length)))
    return frame


def read_frames(connection: socket.socket, done: Callable[[Frame], bool]) -> list[Frame]:
    """Frames up to the first that is ``done``; the server's SETTINGS are acknowledged."""
    frames = [read_frame(connection)]
    while not done(frames[-1]):
        if isinstance(frames[-1], SettingsFrame) and "ACK" not in frames[-1].flags:
            connection.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
        frames.append(read_frame(connection))
    return frames


def call_headers(port: int, method: str, **metadata: str) -> list[tuple[str, str]]:
    """The request headers of a gRPC call of ``method``."""
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", method),
        (":authority", f"127.0.0.1:{port}"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        *metadata.items(),
    ]


def closed_by_peer(connection: socket.socket, timeout: float) -> float | None:
    """Seconds until the server closes ``connection`` (anything it sends is read and dropped),
    or None if it is still open after ``timeout``."""
    started = time.monotonic()
    connection.settimeout(0.05)
    while (elapsed := time.monotonic() - started) < timeout:
        try:
            if not connection.recv(65536):
                return elapsed
        except TimeoutError:
            continue
        except OSError:
            return elapsed
    return None


class FlowingCall(threading.Thread):
    """One connection that sends one call's ``message`` as fast as the server's flow control
    allows, but for its last ``held_back`` bytes (then ends its side if ``end_stream``), and
    waits for the server. It records, in
    seconds from its start, when the server ended the call with a status or a reset
    (``ended_after``, with ``status``: grpc-status, or "reset") and when it closed the
    connection (``closed_after``). It answers SETTINGS and PINGs, as clients do; the thread
    ends when the connection does, or with ``close``."""

    def __init__(
        self,
        port: int,
        method: str,
        message: bytes,
        held_back: int = 0,
        end_stream: bool = False,
        **metadata: str,
    ) -> None:
        super().__init__(daemon=True)
        self.headers = call_headers(port, method, **metadata)
        self.framed = memoryview(b"\x00" + struct.pack(">I", len(message)) + message)
        self.to_send = len(self.framed) - held_back
        self.end_stream = end_stream
        self.sent = 0
        self.windows = {0: 65_535, STREAM: 65_535}
        self.initial_window = 65_535
        self.decoder = Decoder()
        self.status: str | None = None
        self.error: Exception | None = None
        self.ended_after: float | None = None
        self.closed_after: float | None = None
        self.started_at = 0.0
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=60.0)

    def run(self) -> None:
        self.started_at = time.monotonic()
        header_block = HeadersFrame(
            STREAM, data=Encoder().encode(self.headers), flags=["END_HEADERS"]
        )
        try:
            self.socket.sendall(PREFACE + SettingsFrame(0).serialize() + header_block.serialize())
            while True:
                self._send_what_fits()
                self._take(read_frame(self.socket))
        except OSError:
            pass
        except Exception as error:  # A frame this client cannot read: the test says which.
            self.error = error
        self.closed_after = time.monotonic() - self.started_at

    def _send_what_fits(self) -> None:
        frames = []
        while (room := min(*self.windows.values(), self.to_send - self.sent, FRAME_SIZE)) > 0:
            data = self.framed[self.sent : self.sent + room].tobytes()
            frames.append(DataFrame(STREAM, data=data).serialize())
            self.sent += room
            for stream in self.windows:
                self.windows[stream] -= room
        if self.end_stream and self.sent == self.to_send:
            frames.append(DataFrame(STREAM, data=b"", flags=["END_STREAM"]).serialize())
            self.end_stream = False
        if frames:
            self.socket.sendall(b"".join(frames))

    def _take(self, frame: Frame) -> None:
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            window = frame.settings.get(SettingsFrame.INITIAL_WINDOW_SIZE, self.initial_window)
            self.windows[STREAM] += window - self.initial_window
            self.initial_window = window
            self.socket.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(frame, WindowUpdateFrame) and frame.stream_id in self.windows:
            self.windows[frame.stream_id] += frame.window_increment
        elif isinstance(frame, PingFrame) and "ACK" not in frame.flags:
            self.socket.sendall(
                PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"]).serialize()
            )
        elif isinstance(frame, DataFrame) and frame.flow_controlled_length:
            self.socket.sendall(  # The response may be larger than one window.
                WindowUpdateFrame(0, window_increment=frame.flow_controlled_length).serialize()
                + WindowUpdateFrame(
                    STREAM, window_increment=frame.flow_controlled_length
                ).serialize()
            )
        elif isinstance(frame, HeadersFrame):
            headers = dict(self.decoder.decode(frame.data))  # Every block: HPACK keeps state.
            if "grpc-status" in headers:
                self._ended(headers["grpc-status"])
        elif isinstance(frame, RstStreamFrame):
            self._ended("reset")

    def _ended(self, status: str) -> None:
        if self.ended_after is None:
            self.status = status
            self.ended_after = time.monotonic() - self.started_at

    def wait_for_end(self, timeout: float) -> None:
        """Return once the server has ended the call (or the connection), or after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.ended_after is None and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        """Leave: shut down first, or the thread blocked reading would keep the socket open."""
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
