"""The reference the service is measured against: bare FastAPI + onnxruntime, nothing else.

No validation, no limits, no metrics, no access log: ``UploadFile``, Pillow decode,
``session.run``, a dict back (and a V2 JSON tensor read from a ``dict`` body). Its onnxruntime
options are the service's (one intra-op thread, no spinning), so the ratio ours / reference is
what the service's own code costs. Started by the benchmarks as
``uvicorn benchmarks.reference_app:create_app --factory`` with the model path in
``BENCH_MODEL_PATH``.
"""

import io
import os

import numpy as np
import onnxruntime
from fastapi import FastAPI, UploadFile
from PIL import Image

from benchmarks.servers import service_session_options


def create_app() -> FastAPI:
    """One session, one route that classifies one uploaded image, and a health route."""
    session = onnxruntime.InferenceSession(
        os.environ["BENCH_MODEL_PATH"],
        sess_options=service_session_options(),
        providers=["CPUExecutionProvider"],
    )
    app = FastAPI()

    @app.post("/predict")
    async def predict(file: UploadFile) -> dict:
        """The whole job, the plainest way FastAPI allows."""
        image = Image.open(io.BytesIO(await file.read())).convert("L")
        pixels = np.asarray(image, dtype=np.uint8)[np.newaxis]
        probabilities = session.run(None, {"image": pixels})[0][0]
        return {"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist()}

    @app.post("/v2/models/{model_name}/infer")
    async def infer(model_name: str, request: dict) -> dict:
        """A V2 JSON tensor in, probabilities out, as a FastAPI user would first write it."""
        tensor = request["inputs"][0]
        pixels = np.array(tensor["data"], dtype=np.uint8).reshape(tensor["shape"])
        probabilities = session.run(None, {"image": pixels})[0]
        return {
            "model_name": model_name,
            "outputs": [
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": list(probabilities.shape),
                    "data": probabilities.reshape(-1).tolist(),
                }
            ],
        }

    @app.get("/health")
    async def health() -> dict:
        return {"ready": True}

    return app
