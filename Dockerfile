# The serving image: the service, the shipped models and their runtime dependencies.
#
#   docker build -t mnist-mlp:1.0.0 .
#   docker run --read-only -p 8000:8000 -p 8001:8001 mnist-mlp:1.0.0
#
# Every stage here is one the serving image needs, so the build is the same with BuildKit
# (docker buildx) and with the legacy builder of a Docker CLI that has no buildx plugin.
# Training has its own file: Dockerfile.train.
#
# Any Debian-based image with Python >= 3.11 and its venv module can be the base
# (python:3.11-slim, or Debian's own python3 + python3-venv): PYTHON_IMAGE picks it.

ARG PYTHON_IMAGE=python:3.11-slim

# A virtualenv with the service's runtime dependencies and nothing else, installed from the
# lock (requirements/serve.txt: every version and file hash pinned) before any source is
# copied, so that code changes reuse this layer. Then only what the service loads is kept:
# no installer (nothing installs at run time), no test suites or type stubs, none of numpy's
# build tools (f2py, distutils, C headers), none of onnxruntime's offline tools
# (quantisation, transformer optimisers), and not its C-API library, which the Python
# binding does not load (it carries its own copy of the runtime). The container smoke test
# runs real inference on the result.
FROM ${PYTHON_IMAGE} AS serve-venv
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/serve.txt /build/serve.txt
RUN pip install --require-hashes --no-deps --requirement /build/serve.txt \
    && pip uninstall --yes --quiet pip setuptools \
    && cd /opt/venv/lib/python3*/site-packages \
    && find . -type d -name tests -prune -exec rm -rf {} + \
    && find . -name '*.pyi' -delete \
    && rm -rf numpy/f2py numpy/distutils numpy/_core/include numpy/_core/lib \
        onnxruntime/quantization onnxruntime/tools onnxruntime/transformers \
        onnxruntime/capi/libonnxruntime.so.* \
    && rm -f /opt/venv/bin/f2py /opt/venv/bin/numpy-config /opt/venv/bin/onnxruntime_test

# The venv, the service and the models, run by an unprivileged user. The root filesystem
# can be read-only with no extra mount: bytecode is compiled here, the service keeps uploads
# in memory, onnxruntime's telemetry (which would record a device id under $HOME) is off,
# and temporary files (the metrics of several workers) go to /dev/shm, the memory-backed
# folder every container has. glibc hands freed blocks over 128 KiB back to the system
# (MALLOC_MMAP_THRESHOLD_), as the Kubernetes manifests set it, so that memory taken by a burst
# of large requests does not stay with the worker.
FROM ${PYTHON_IMAGE}
RUN useradd --system --user-group --uid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin mnist
COPY --from=serve-venv /opt/venv /opt/venv
WORKDIR /app
COPY service/ service/
COPY models/ models/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    TMPDIR=/dev/shm \
    MNIST_HOST=0.0.0.0 \
    MNIST_PORT=8000 \
    MNIST_GRPC_PORT=8001 \
    MALLOC_MMAP_THRESHOLD_=131072
RUN python -m compileall -q service
USER mnist
# HTTP (MNIST_PORT) and gRPC (MNIST_GRPC_PORT), Triton's pair.
EXPOSE 8000 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('MNIST_PORT', '8000') + '/v2/health/ready'; sys.exit(urllib.request.urlopen(url, timeout=4).status != 200)"]
CMD ["python", "-m", "service"]
