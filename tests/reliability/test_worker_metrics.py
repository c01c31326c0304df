"""With several workers, ``/metrics`` counts the requests of all of them, whichever one answers."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.reliability.payloads import valid_png
from tests.support.live_server import live_service

CLIENTS = 8
REQUESTS_PER_CLIENT = 10
METRICS_READS = 6
COUNTER = 'mnist_http_requests_total{method="POST",route="/predict",status="200"}'


def post_images(url: str) -> list[int]:
    """Each request on a new connection, so the kernel spreads them over the workers."""
    return [
        httpx.post(url, content=valid_png(), headers={"content-type": "image/png"}).status_code
        for _ in range(REQUESTS_PER_CLIENT)
    ]


def predict_count(metrics_text: str) -> float:
    lines = [line for line in metrics_text.splitlines() if line.startswith(COUNTER)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_metrics_are_summed_over_every_worker(model_path: Path) -> None:
    with live_service(model_path, workers=2) as service:
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = [
                s
                for batch in pool.map(post_images, [f"{service.url}/predict"] * CLIENTS)
                for s in batch
            ]
        assert statuses == [200] * CLIENTS * REQUESTS_PER_CLIENT
        counts = {
            predict_count(httpx.get(f"{service.url}/metrics").text) for _ in range(METRICS_READS)
        }
    assert counts == {CLIENTS * REQUESTS_PER_CLIENT}
