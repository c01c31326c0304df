"""HTTP service that classifies digit images with the exported ONNX model (never TensorFlow)."""

import os

# Read by onnxruntime when it is imported: without it, it records a device id under $HOME
# (and a read-only container has no writable home). Set before any module imports it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
