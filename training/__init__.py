"""Reproduce the Keras notebook's three MNIST MLPs, report them, and ship the best as ONNX.

Data flows one way: MNIST files -> training -> ``models/`` (ONNX model, model cards, plots).
"""
