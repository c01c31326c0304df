"""Service configuration, read from ``MNIST_*`` environment variables."""

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.inference.cpus import available_cpus
from service.inference.limits import DEFAULT_MAX_DECODE_BYTES
from service.inference.model_card import card_beside

SHIPPED_REPOSITORY = Path("models")


def _default_repository() -> Path:
    """The shipped models beside the package (a checkout, the container), else under the cwd."""
    beside_package = Path(__file__).resolve().parent.parent / SHIPPED_REPOSITORY
    return beside_package if beside_package.is_dir() else Path.cwd() / SHIPPED_REPOSITORY


DEFAULT_REPOSITORY = _default_repository()
# The shipped fp32 model, one version of the repository's mnist_mlp.
DEFAULT_MODEL_PATH = DEFAULT_REPOSITORY / "mnist_mlp.onnx"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only takes connections from this host."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def seconds(
    default: float, description: str, *, zero_allowed: bool = False, at_most: float | None = None
) -> Any:
    """A duration field: more than 0 seconds (0 too where ``zero_allowed``), at most ``at_most``."""
    if zero_allowed:
        return Field(default, ge=0, le=at_most, description=description)
    return Field(default, gt=0, le=at_most, description=description)


def tcp_port(default: int, description: str) -> Any:
    """A TCP port field, 0 included (the OS picks one)."""
    return Field(default, ge=0, le=65535, description=description)


LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["text", "json"]


class Settings(BaseSettings):
    """Every knob of the service; each field is the environment variable ``MNIST_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="MNIST_", frozen=True)

    model_repository: Path = Field(
        DEFAULT_REPOSITORY,
        description="Folder of *.onnx models, each with its JSON card; every version is served.",
    )
    model_path: Path | None = Field(
        None, description="Serve only this ONNX file (and its card) instead of the repository."
    )
    card_path: Path | None = Field(
        None, description="The card of MNIST_MODEL_PATH; default: that path with a .json suffix."
    )
    model_control: bool = Field(
        False,
        description="Serve the repository routes (REST and gRPC) that load and unload models. "
        "Without API keys the service then refuses to start unless MNIST_HOST is a loopback "
        "address.",
    )
    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 in the container.")
    port: int = tcp_port(8000, "TCP port to bind.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    grpc_enabled: bool = Field(
        True, description="Serve the Open Inference Protocol over gRPC too; false turns it off."
    )
    grpc_port: int = tcp_port(8001, "TCP port for gRPC, on MNIST_HOST; 0: the OS picks.")
    grpc_drain_seconds: float = seconds(
        30.0, "Longest wait for gRPC calls in flight when stopping.", zero_allowed=True
    )
    grpc_handshake_seconds: float = seconds(
        10.0, "Seconds a new gRPC connection has to send its preface.", at_most=3600
    )
    grpc_idle_seconds: float = seconds(
        60.0, "A gRPC connection without a call this long is closed (GOAWAY)."
    )
    grpc_max_connection_age_seconds: float = seconds(
        1800.0,
        "A gRPC connection older than this gets GOAWAY (clients reconnect, spreading "
        "over workers); its calls get MNIST_GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS more.",
    )
    grpc_max_connection_age_grace_seconds: float = seconds(
        30.0, "How long calls on a connection past its age may still take.", zero_allowed=True
    )
    grpc_keepalive_seconds: float = seconds(
        60.0,
        "The server pings a gRPC connection quiet for this long, and closes it when "
        "no answer comes within MNIST_GRPC_KEEPALIVE_TIMEOUT_SECONDS (a peer that is gone).",
    )
    grpc_keepalive_timeout_seconds: float = seconds(
        20.0, "How long the server waits for the answer to its keepalive ping."
    )
    grpc_max_concurrent_streams: int = Field(
        100,
        ge=1,
        le=2**31 - 1,
        description="Most calls one gRPC connection may have open at once (HTTP/2 "
        "MAX_CONCURRENT_STREAMS); more are refused and retried by the client.",
    )
    grpc_max_connections: int = Field(
        1000, ge=1, description="Most gRPC connections a worker holds; one more is closed at once."
    )
    grpc_receive_seconds: float = seconds(
        30.0,
        "Longest a gRPC call's request message may take to arrive, from the call's "
        "start; then DEADLINE_EXCEEDED, and the bytes received are let go.",
        at_most=3600,
    )
    log_level: LogLevel = Field(
        "info", description="Log level; info writes one access line per request."
    )
    log_format: LogFormat = Field(
        "text", description="text lines, or json: one JSON object a line, for log collectors."
    )
    access_log: bool = Field(True, description="Write one access-log line per request.")
    intra_op_threads: int = Field(
        1,
        ge=0,
        le=64,
        description="onnxruntime threads for calls under 128 images (larger use every CPU the "
        "process may: its affinity, capped by a container's CPU quota).",
    )
    heavy_work_threads: int = Field(
        default_factory=available_cpus,
        ge=1,
        le=256,
        description="Most large images or tensor bodies decoded at once per worker; default: the "
        "CPUs the process may use",
    )
    max_request_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, counted while reading.",
    )
    max_inflight_bytes: int = Field(
        192 * 1024 * 1024,
        ge=1024,
        description="Most bytes of requests read, decoded and inferred at once per worker, over "
        "REST and gRPC together (bodies, decoded images, tensors); past it a request waits, then "
        "gets 503 (gRPC RESOURCE_EXHAUSTED). The default fits a 640 MiB pod with one worker.",
    )
    inflight_wait_seconds: float = seconds(
        1.0,
        "Longest wait for room in MNIST_MAX_INFLIGHT_BYTES before a 503 with "
        "Retry-After; 0 refuses at once.",
        zero_allowed=True,
        at_most=60,
    )
    max_image_bytes: int = Field(
        5 * 1024 * 1024, ge=64, description="Largest single uploaded image file."
    )
    max_image_pixels: int = Field(
        25_000_000, ge=784, description="Largest width x height, checked from the image header."
    )
    max_image_decode_bytes: int = Field(
        DEFAULT_MAX_DECODE_BYTES,
        ge=1024 * 1024,
        description="Most memory decoding one image may take: width x height x the bytes a pixel "
        "of its colour mode and format costs (3 for grey, 7 for 16-bit grey, 9 for colour, 17 for "
        "WebP), checked from the header before decoding.",
    )
    max_request_pixels: int = Field(
        50_000_000,
        ge=784,
        description="Most decoded pixels over all the images of one request, from their headers.",
    )
    max_image_side: int = Field(
        10_000, ge=28, description="Longest side in pixels, checked from the image header."
    )
    max_images_per_request: int = Field(
        64, ge=1, description="Most images in one POST /predict request."
    )
    max_batch_size: int = Field(
        16_384, ge=1, description="Most images (N) in one V2 inference request."
    )
    dynamic_batching: bool = Field(
        True,
        description="Run the images of concurrent /predict and small V2 requests (REST and "
        "gRPC) in one model call.",
    )
    read_timeout: float = seconds(
        30.0,
        "Seconds a request's headers or body may stall between two reads: then 408.",
        at_most=3600,
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the service answers to (JSON list; '*.example.com' for "
        "subdomains), against DNS rebinding; others get 400. Health routes answer any. Empty: "
        "any host.",
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line and headers together; past it a JSON 431 and the "
        "connection closes.",
    )
    max_headers: int = Field(
        100, ge=8, le=10_000, description="Most header lines in one request; past it a JSON 431."
    )
    linger_seconds: float = seconds(
        30.0,
        "After an answer given before the request's body was in (401, 404, 413, "
        "instead of 100 Continue), the longest the rest of the body is read and discarded "
        "before the connection closes (nginx's lingering_time).",
        at_most=600,
    )
    linger_timeout: float = seconds(
        5.0,
        "While discarding such a body, the longest wait for its next bytes before "
        "the connection closes (nginx's lingering_timeout).",
        at_most=600,
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty turns CORS off."
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys for 'Authorization: Bearer <key>' on every route but health, the page "
        "and the docs; empty (and no api_keys_file) turns the check off.",
    )
    api_keys_file: Path | None = Field(
        None, description="A file of API keys, one a line (a mounted Kubernetes secret)."
    )

    @model_validator(mode="after")
    def _image_fits_in_request(self) -> "Settings":
        if self.max_image_bytes > self.max_request_bytes:
            raise ValueError("max_image_bytes cannot exceed max_request_bytes")
        if 2 * self.max_request_bytes > self.max_inflight_bytes:
            raise ValueError(
                "max_request_bytes cannot exceed half of max_inflight_bytes (a body is held twice "
                "while it is read)"
            )
        if self.max_image_decode_bytes > self.max_inflight_bytes:
            raise ValueError("max_image_decode_bytes cannot exceed max_inflight_bytes")
        if self.max_image_pixels > self.max_request_pixels:
            raise ValueError("max_image_pixels cannot exceed max_request_pixels")
        return self

    @model_validator(mode="after")
    def _api_keys_are_usable(self) -> "Settings":
        """Read the key file now, so that a wrong path stops the service at start-up."""
        keys = self.all_api_keys
        if any(not key or any(character.isspace() for character in key) for key in keys):
            raise ValueError("api_keys: a key must be non-empty and contain no whitespace")
        return self

    @model_validator(mode="after")
    def _model_control_is_not_open_to_the_network(self) -> "Settings":
        """Loading and unloading change what every client gets: without keys, only a service
        bound to loopback (reached from its own host) may offer them."""
        if self.model_control and not self.all_api_keys and not is_loopback(self.host):
            raise ValueError(
                f"model_control is on without API keys while the service listens on {self.host}: "
                "set MNIST_API_KEYS (or MNIST_API_KEYS_FILE), bind MNIST_HOST=127.0.0.1, or "
                "turn MNIST_MODEL_CONTROL off"
            )
        return self

    @cached_property
    def all_api_keys(self) -> tuple[str, ...]:
        """The keys of ``api_keys`` and of ``api_keys_file`` (blank and ``#`` lines skipped)."""
        keys = [secret.get_secret_value() for secret in self.api_keys]
        if self.api_keys_file is not None:
            try:
                lines = self.api_keys_file.read_text(encoding="utf-8").splitlines()
            except OSError as error:
                raise ValueError(f"api_keys_file {self.api_keys_file}: {error.strerror}") from None
            stripped = (line.strip() for line in lines)
            keys += [line for line in stripped if line and not line.startswith("#")]
        return tuple(keys)

    @cached_property
    def resolved_card_path(self) -> Path | None:
        """The card of ``model_path``, defaulting to it with ``.json``; None without one."""
        if self.model_path is None:
            return None
        return self.card_path or card_beside(self.model_path)
