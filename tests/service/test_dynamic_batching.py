"""With dynamic batching on, concurrent requests share model calls and each gets its own answer."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import onnxruntime

from service.rest.app import create_app
from service.settings import Settings
from tests.support.images import mnist_like, png_bytes
from tests.support.live_server import live_server

CONCURRENT_REQUESTS = 24


def test_concurrent_requests_get_their_own_probabilities(tiny_model_path: Path) -> None:
    arrays = [mnist_like(seed) for seed in range(CONCURRENT_REQUESTS)]
    expected = onnxruntime.InferenceSession(str(tiny_model_path)).run(
        None, {"image": np.stack(arrays)}
    )[0]
    settings = Settings(model_path=tiny_model_path, access_log=False, dynamic_batching=True)
    with live_server(create_app(settings)) as url, httpx.Client() as client:

        def post(index: int) -> list[float]:
            files = {"file": (f"{index}.png", png_bytes(arrays[index]), "image/png")}
            response = client.post(f"{url}/predict", files=files)
            assert response.status_code == 200, response.text
            (prediction,) = response.json()["predictions"]
            assert prediction["filename"] == f"{index}.png"
            return prediction["probabilities"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(CONCURRENT_REQUESTS)))
        refused = client.post(f"{url}/predict", content=b"x", headers={"content-type": "image/png"})
    np.testing.assert_allclose(answers, expected, atol=1e-6)
    assert refused.status_code == 415
