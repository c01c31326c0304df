"""A client that keeps asking while a test abuses the server: from a thread of its own, so that
the abuse's event loop cannot delay it, with a timeout a Kubernetes probe would have."""

import threading
import time

import httpx

PROBE_TIMEOUT_SECONDS = 3.0  # the Kubernetes manifests' probe timeout
PROBE_PAUSE_SECONDS = 0.05


# A POST a probe sends: its path, body and Content-Type.
Post = tuple[str, bytes, str]


class Prober:
    """GETs each of ``paths`` (and sends each of ``posts``) in turn every 50 ms while the
    ``with`` block runs: how long each answer took, and every failure (a transport error, or a
    status other than 200)."""

    def __init__(
        self,
        url: str,
        paths: list[str],
        headers: dict[str, str] | None = None,
        posts: list[Post] | None = None,
    ) -> None:
        self.url = url
        self.paths = paths
        self.posts = posts or []
        self.headers = headers or {}
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)

    def _probe(self) -> None:
        with httpx.Client(timeout=PROBE_TIMEOUT_SECONDS, headers=self.headers) as client:
            while not self._stop.wait(PROBE_PAUSE_SECONDS):
                for path in self.paths:
                    self._ask(client, path)
                for post in self.posts:
                    self._ask(client, *post)

    def _ask(
        self, client: httpx.Client, path: str, body: bytes | None = None, kind: str = ""
    ) -> None:
        started = time.perf_counter()
        try:
            if body is None:
                status = client.get(f"{self.url}{path}").status_code
            else:
                headers = {"Content-Type": kind}
                status = client.post(f"{self.url}{path}", content=body, headers=headers).status_code
        except httpx.TransportError as error:
            self.failures.append(f"{path}: {error!r}")
            return
        if status != 200:
            self.failures.append(f"{path}: status {status}")
        self.latencies.append(time.perf_counter() - started)

    def __enter__(self) -> "Prober":
        self._thread.start()
        return self

    def __exit__(self, *exception: object) -> None:
        self._stop.set()
        self._thread.join()
