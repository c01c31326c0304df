"""HTTP service that classifies digit images with the exported ONNX model (never TensorFlow)."""
