"""The floor: the same job on a raw ASGI callable, with no framework and no checks at all.

``POST /predict`` slices the first multipart part out of the body, decodes it with Pillow and
makes the service's onnxruntime call; ``POST /v2/models/{name}/infer`` reads a one-input JSON
tensor with orjson and makes the same call. No routing, validation, limits, metrics or log: this
is what Python, uvicorn and onnxruntime cost for the job, the bound on what a framework can add
nothing to. Started by the benchmarks as ``uvicorn benchmarks.floor_app:create_app --factory``
with the model path in ``BENCH_MODEL_PATH``.
"""

import io
import os
from collections.abc import Awaitable, Callable

import numpy as np
import onnxruntime
import orjson
from PIL import Image

from benchmarks.servers import service_session_options

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
JSON_HEADERS = [(b"content-type", b"application/json")]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, body: bytes) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app() -> Callable[[dict, Receive, Send], Awaitable[None]]:
    """One session and an ASGI callable that answers by method alone (GET: health)."""
    session = onnxruntime.InferenceSession(
        os.environ["BENCH_MODEL_PATH"],
        sess_options=service_session_options(),
        providers=["CPUExecutionProvider"],
    )

    def predict(body: bytes) -> bytes:
        start = body.index(b"\r\n\r\n") + 4
        image = Image.open(io.BytesIO(body[start : body.rindex(b"\r\n--", start)])).convert("L")
        pixels = np.asarray(image, dtype=np.uint8)[np.newaxis]
        probabilities = session.run(None, {"image": pixels})[0][0]
        return orjson.dumps(
            {"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist()}
        )

    def infer(body: bytes) -> bytes:
        tensor = orjson.loads(body)["inputs"][0]
        pixels = np.frombuffer(bytes(tensor["data"]), dtype=np.uint8).reshape(tensor["shape"])
        probabilities = session.run(None, {"image": pixels})[0]
        output = {"name": "probabilities", "datatype": "FP32", "shape": list(probabilities.shape)}
        output["data"] = probabilities.reshape(-1)
        return orjson.dumps({"outputs": [output]}, option=orjson.OPT_SERIALIZE_NUMPY)

    async def app(scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["method"] == "GET":
            await _answer(send, b'{"ready":true}')
        else:
            job = infer if scope["path"].endswith("/infer") else predict
            await _answer(send, job(await _body(receive)))

    return app
