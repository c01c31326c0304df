"""What one gRPC connection may hold, and for how long: grpc core's public channel arguments
(``grpc/impl/channel_arg_names.h``), each from an ``MNIST_GRPC_*`` setting.

Every connection ends: one that sends nothing, or only part of its preface, is closed after
``MNIST_GRPC_HANDSHAKE_SECONDS``; one with no call in flight (a bare preface included) after
``MNIST_GRPC_IDLE_SECONDS``; a peer that stops answering pings after the keepalive time and
timeout; any connection after its maximum age and grace. A connection opens at most
``MNIST_GRPC_MAX_CONCURRENT_STREAMS`` calls at once, and a worker holds at most
``MNIST_GRPC_MAX_CONNECTIONS``. How long a request message may take to arrive, and the memory it
holds meanwhile, are bounded per call by ``service.grpc.admission``.
"""

from service.settings import Settings

ChannelOptions = list[tuple[str, int]]


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def server_options(settings: Settings) -> ChannelOptions:
    """The grpc.aio server's options for ``settings``."""
    return [
        ("grpc.max_receive_message_length", settings.max_request_bytes),
        ("grpc.max_send_message_length", settings.max_request_bytes),
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        ("grpc.server_handshake_timeout_ms", _milliseconds(settings.grpc_handshake_seconds)),
        ("grpc.max_connection_idle_ms", _milliseconds(settings.grpc_idle_seconds)),
        ("grpc.max_connection_age_ms", _milliseconds(settings.grpc_max_connection_age_seconds)),
        (
            "grpc.max_connection_age_grace_ms",
            _milliseconds(settings.grpc_max_connection_age_grace_seconds),
        ),
        ("grpc.keepalive_time_ms", _milliseconds(settings.grpc_keepalive_seconds)),
        ("grpc.keepalive_timeout_ms", _milliseconds(settings.grpc_keepalive_timeout_seconds)),
        # grpc waits this long for a ping's answer whatever keepalive_timeout says (60 s by
        # default): a peer that reads nothing more would keep its call open until then.
        ("grpc.http2.ping_timeout_ms", _milliseconds(settings.grpc_keepalive_timeout_seconds)),
        ("grpc.max_concurrent_streams", settings.grpc_max_concurrent_streams),
        ("grpc.max_allowed_incoming_connections", settings.grpc_max_connections),
        # Without bandwidth-delay probing a stream's window stays at HTTP/2's initial 64 KiB
        # until the server asks for its message (then it opens to the message's length): a
        # message the server has not asked for cannot fill memory behind its back.
        ("grpc.http2.bdp_probe", 0),
    ]
