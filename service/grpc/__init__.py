"""The Open Inference Protocol over gRPC: a translation of the core's dataplane, nothing more.

``server`` builds the grpc.aio server (the V2 service, grpc.health.v1, reflection) that the app's
lifespan starts beside HTTP; ``servicer`` and ``tensors`` translate messages; ``observer``
counts, logs and guards every call; ``proto`` holds the vendored proto and its stubs.
"""
