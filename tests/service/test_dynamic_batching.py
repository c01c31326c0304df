"""With dynamic batching on, concurrent requests share model calls and each gets its own answer."""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime
import orjson
import pytest
import tritonclient.grpc as triton_grpc

from service.inference import batching
from service.inference.batching import MAX_TURNS
from service.inference.classifier import Classifier
from service.inference.dataplane import DataPlane
from service.inference.repository import open_repository
from service.inference.v2 import InferRequest
from service.rest.app import create_rest_app
from service.rest.uvicorn_hooks import ReadTimeoutProtocol
from service.settings import Settings
from tests.support.event_loop import run_on_own_thread
from tests.support.grpc_servers import grpc_settings, served
from tests.support.images import mnist_like, png_bytes
from tests.support.live_server import live_server
from tests.support.models import build_tiny_model, write_model
from tests.support.repositories import infer_body, two_versions

CONCURRENT_REQUESTS = 24
ARRAYS = np.stack([mnist_like(seed) for seed in range(CONCURRENT_REQUESTS)])
DYNAMIC_QUANTISATION = {"method": "onnxruntime.quantization.quantize_dynamic", "weights": "QInt8"}


def expected_probabilities(model_path: Path, images: np.ndarray = ARRAYS) -> np.ndarray:
    return onnxruntime.InferenceSession(str(model_path)).run(None, {"image": images})[0]


def batching_dataplane(model_path: Path) -> DataPlane:
    """A dataplane with batching on, serving the model (a file, or a repository folder)."""
    where = {"model_repository": model_path} if model_path.is_dir() else {"model_path": model_path}
    settings = Settings(**where, access_log=False, dynamic_batching=True)
    dataplane = DataPlane(settings)
    dataplane.serve_repository(open_repository(settings))
    return dataplane


class CountedRuns:
    """Counts ``Classifier.run`` calls (and the images in each), optionally failing them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: Exception | None = None) -> None:
        self.sizes: list[int] = []
        original = Classifier.run

        def run(classifier: Classifier, names: list[str], images: np.ndarray) -> list:
            self.sizes.append(len(images))
            if error is not None:
                raise error
            return original(classifier, names, images)

        monkeypatch.setattr(Classifier, "run", run)


def one_image_requests(count: int, version: str | None = None) -> list[tuple]:
    """(model, version, parsed V2 body) for each of the first ``count`` images, one each."""
    return [
        (
            "mnist_mlp",
            version,
            InferRequest.from_rest(orjson.dumps(infer_body(ARRAYS[i : i + 1])), None),
        )
        for i in range(count)
    ]


def infer(dataplane: DataPlane, request: tuple) -> Any:
    """``dataplane.infer`` of a (model, version, request) triple, the model looked up first as
    the transports do."""
    name, version, received = request
    return dataplane.infer(dataplane.model(name, version), received)


def gather(dataplane: DataPlane, requests: list[tuple]) -> list[Any]:
    """Every request's ``infer`` started in the same event-loop turn; results or errors."""

    async def main() -> list[Any]:
        calls = [infer(dataplane, request) for request in requests]
        return await asyncio.gather(*calls, return_exceptions=True)

    return run_on_own_thread(main())


def probabilities(result: Any) -> np.ndarray:
    ((_, array),) = result.outputs
    return array


def test_requests_of_one_turn_share_one_model_call(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataplane = batching_dataplane(tiny_model_path)
    calls = CountedRuns(monkeypatch)
    results = gather(dataplane, one_image_requests(8))
    assert calls.sizes == [8]
    answers = np.concatenate([probabilities(result) for result in results])
    np.testing.assert_allclose(answers, expected_probabilities(tiny_model_path)[:8], atol=1e-6)


def test_versions_served_side_by_side_never_share_a_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataplane = batching_dataplane(two_versions(tmp_path))
    calls = CountedRuns(monkeypatch)
    requests = [*one_image_requests(3, "1"), *one_image_requests(3, "2")]
    results = gather(dataplane, requests)
    assert sorted(calls.sizes) == [3, 3]
    for version, result in zip("111222", results, strict=True):
        assert result.model_version == version
    first, second = tmp_path / "first.onnx", tmp_path / "second.onnx"
    np.testing.assert_allclose(
        np.concatenate([probabilities(result) for result in results]),
        np.concatenate([expected_probabilities(first)[:3], expected_probabilities(second)[:3]]),
        atol=1e-6,
    )


def test_a_dynamically_quantised_model_runs_each_request_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its activations are scaled over the whole call: one client's image would change another's
    answer."""
    model_path = write_model(tmp_path, build_tiny_model(), quantization=DYNAMIC_QUANTISATION)
    dataplane = batching_dataplane(model_path)
    assert not dataplane.model().card.batch_independent
    calls = CountedRuns(monkeypatch)
    gather(dataplane, one_image_requests(4))
    assert calls.sizes == [1, 1, 1, 1]


def test_a_model_error_reaches_every_request_of_the_call(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataplane = batching_dataplane(tiny_model_path)
    calls = CountedRuns(monkeypatch, error=RuntimeError("onnxruntime failed"))
    results = gather(dataplane, one_image_requests(3))
    assert calls.sizes == [3]
    assert [str(result) for result in results] == ["onnxruntime failed"] * 3


def test_requests_that_joined_a_cancelled_leader_still_get_their_answers(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataplane = batching_dataplane(tiny_model_path)
    calls = CountedRuns(monkeypatch)
    leader_request, follower_request = one_image_requests(2)

    async def main() -> tuple[bool, Any]:
        leader = asyncio.create_task(infer(dataplane, leader_request))
        follower = asyncio.create_task(infer(dataplane, follower_request))
        await asyncio.sleep(0)  # the leader now waits out its turn, and the follower joined it
        leader.cancel()
        answer = await follower
        with pytest.raises(asyncio.CancelledError):
            await leader
        return leader.cancelled(), answer

    cancelled, answer = run_on_own_thread(main())
    assert cancelled
    assert calls.sizes == [2]
    np.testing.assert_allclose(
        probabilities(answer), expected_probabilities(tiny_model_path)[1:2], atol=1e-6
    )


def concurrently(post: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, range(CONCURRENT_REQUESTS)))


def test_concurrent_predict_requests_get_their_own_probabilities(tiny_model_path: Path) -> None:
    settings = Settings(model_path=tiny_model_path, access_log=False, dynamic_batching=True)
    with live_server(create_rest_app(settings)) as url, httpx.Client() as client:

        def post(index: int) -> list[float]:
            files = {"file": (f"{index}.png", png_bytes(ARRAYS[index]), "image/png")}
            response = client.post(f"{url}/predict", files=files)
            assert response.status_code == 200, response.text
            (prediction,) = response.json()["predictions"]
            assert prediction["filename"] == f"{index}.png"
            return prediction["probabilities"]

        answers = concurrently(post)
        refused = client.post(f"{url}/predict", content=b"x", headers={"content-type": "image/png"})
    np.testing.assert_allclose(answers, expected_probabilities(tiny_model_path), atol=1e-6)
    assert refused.status_code == 415


def test_concurrent_v2_requests_over_rest_and_grpc_get_their_own_outputs(
    tiny_model_path: Path,
) -> None:
    settings = grpc_settings(tiny_model_path, dynamic_batching=True)
    with (
        served(settings) as server,
        httpx.Client() as client,
        triton_grpc.InferenceServerClient(server.target) as grpc_client,
    ):

        def over_rest(index: int) -> list[float]:
            body = infer_body(ARRAYS[index : index + 1])
            response = client.post(f"{server.url}/v2/models/mnist_mlp/infer", json=body)
            assert response.status_code == 200, response.text
            return response.json()["outputs"][0]["data"]

        def over_grpc(index: int) -> np.ndarray:
            tensor = triton_grpc.InferInput("image", [1, 28, 28], "UINT8")
            tensor.set_data_from_numpy(ARRAYS[index : index + 1])
            return grpc_client.infer("mnist_mlp", [tensor]).as_numpy("probabilities")[0]

        answers = [concurrently(over_rest), concurrently(over_grpc)]
    expected = expected_probabilities(tiny_model_path)
    for answer in answers:
        np.testing.assert_allclose(answer, expected, atol=1e-6)


def test_a_call_waits_while_requests_keep_joining_but_only_so_long(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests arrive together, then one a loop turn, as they do under load: the first
    call takes them for ``MAX_TURNS`` turns and then runs; the later ones get calls of their
    own, and everyone gets an answer."""
    dataplane = batching_dataplane(tiny_model_path)
    calls = CountedRuns(monkeypatch)
    requests = one_image_requests(MAX_TURNS + 4)

    async def main() -> list[Any]:
        tasks = [asyncio.create_task(infer(dataplane, request)) for request in requests[:2]]
        for request in requests[2:]:
            await asyncio.sleep(0)
            tasks.append(asyncio.create_task(infer(dataplane, request)))
        return await asyncio.gather(*tasks)

    results = run_on_own_thread(main())
    assert calls.sizes[0] == MAX_TURNS + 1
    assert sum(calls.sizes) == len(requests)
    answers = np.concatenate([probabilities(result) for result in results])
    expected = expected_probabilities(tiny_model_path)[: len(requests)]
    np.testing.assert_allclose(answers, expected, atol=1e-6)


def counted_turns(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """One entry for each event-loop turn a model call waits for company."""
    waits: list[None] = []
    original_turn = batching.next_turn

    async def counted_turn() -> None:
        waits.append(None)
        await original_turn()

    monkeypatch.setattr(batching, "next_turn", counted_turn)
    return waits


def test_a_request_alone_waits_one_turn_then_runs_alone(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody joins during its first turn: it runs, alone, without waiting a second one."""
    dataplane = batching_dataplane(tiny_model_path)
    calls = CountedRuns(monkeypatch)
    waits = counted_turns(monkeypatch)
    gather(dataplane, one_image_requests(1))
    assert (calls.sizes, waits) == ([1], [None])


def test_live_requests_one_at_a_time_each_run_alone(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by uvicorn with the service's protocol, which tells the batcher nothing: requests
    sent one at a time each wait one turn and run in a call of their own."""
    settings = Settings(model_path=tiny_model_path, access_log=False, dynamic_batching=True)
    calls = CountedRuns(monkeypatch)
    waits = counted_turns(monkeypatch)
    image = infer_body(ARRAYS[:1])
    with live_server(create_rest_app(settings), http=ReadTimeoutProtocol) as url:
        for _ in range(3):
            assert httpx.post(f"{url}/v2/models/mnist_mlp/infer", json=image).is_success
    assert (calls.sizes[-3:], len(waits)) == ([1, 1, 1], 3)  # after the warm-up calls


def test_the_metric_counts_the_images_of_each_onnxruntime_call(tiny_model_path: Path) -> None:
    """Eight concurrent requests of one image served by one call: one call of eight images."""
    dataplane = batching_dataplane(tiny_model_path)
    gather(dataplane, one_image_requests(8))
    text = dataplane.metrics.exposition().decode()
    labels = 'model="mnist_mlp",version="1"'
    assert f"mnist_inference_batch_size_count{{{labels}}} 1.0" in text
    assert f"mnist_inference_batch_size_sum{{{labels}}} 8.0" in text
