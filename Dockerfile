# MNIST digit classifier: the serving image (default) and a training image.
#
#   docker build -t mnist-mlp .                          # serve the shipped model
#   docker run --read-only -p 8000:8000 mnist-mlp
#
#   docker build --target train -t mnist-mlp-train .     # rebuild models/ from MNIST
#   docker run --rm -v "$PWD/models:/app/models" -v /path/to/mnist:/data:ro \
#       -e MNIST_DIR=/data --user "$(id -u):$(id -g)" mnist-mlp-train [--epochs N ...]
#
# Any Debian-based image with Python >= 3.11 and its venv module can be the base
# (python:3.11-slim, or Debian's own python3 + python3-venv): PYTHON_IMAGE picks it.
# The stages are ordered for BuildKit, which builds only what the target needs; the
# serving stage comes last so that a plain `docker build` produces it.

ARG PYTHON_IMAGE=python:3.11-slim

# A virtualenv with the service's runtime dependencies, and nothing else: the base
# dependencies of pyproject.toml. Read straight from pyproject.toml so the list lives
# in one place, and installed before any source is copied so that code changes reuse
# this layer.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY pyproject.toml ./
RUN python -c 'import tomllib; project = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(*project["dependencies"], sep="\n")' \
        > requirements.txt \
    && pip install --requirement requirements.txt

# The serving venv keeps only what the service loads, to stay within its size budget:
# no installer (nothing installs at run time), no test suites or type stubs, none of
# numpy's build tools (f2py, distutils, C headers), none of onnxruntime's offline
# tools (quantisation, transformer optimisers), and not its C-API library, which the
# Python binding does not load (it carries its own copy of the runtime). The container
# smoke test runs real inference on the result.
FROM deps AS serve-venv
RUN pip uninstall --yes --quiet pip setuptools \
    && cd /opt/venv/lib/python3*/site-packages \
    && find . -type d -name tests -prune -exec rm -rf {} + \
    && find . -name '*.pyi' -delete \
    && rm -rf numpy/f2py numpy/distutils numpy/_core/include numpy/_core/lib \
        onnxruntime/quantization onnxruntime/tools onnxruntime/transformers \
        onnxruntime/capi/libonnxruntime.so.* \
    && rm -f /opt/venv/bin/f2py /opt/venv/bin/numpy-config /opt/venv/bin/onnxruntime_test

# Training: TensorFlow and the export tools on top of the service's dependencies.
# The model is rebuilt when the container runs, so MNIST can be mounted and named by
# MNIST_DIR (without it Keras downloads MNIST); arguments after the image name go to
# the training CLI. Everything it writes besides the output goes under /tmp, so it
# runs as any user: pass --user to own the output.
FROM deps AS train
RUN python -c 'import tomllib; project = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(*project["optional-dependencies"]["train"], sep="\n")' \
        > requirements-train.txt \
    && pip install --requirement requirements.txt --requirement requirements-train.txt
RUN useradd --system --user-group --uid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin mnist
WORKDIR /app
COPY training/ training/
RUN python -m compileall -q training \
    && mkdir models && chown mnist:mnist models
ENV PYTHONPATH=/app \
    KERAS_HOME=/tmp/keras \
    MPLCONFIGDIR=/tmp/matplotlib \
    ORT_DISABLE_TELEMETRY=1
USER mnist
ENTRYPOINT ["python", "-m", "training", "--output-dir", "/app/models", "--work-dir", "/tmp/work"]

# Serving: the venv, the service and the model, run by an unprivileged user. The root
# filesystem can be read-only with no extra mount: bytecode is compiled here, the
# service keeps uploads in memory, onnxruntime's telemetry (which would record a device
# id under $HOME) is off, and temporary files (the metrics of several workers) go to
# /dev/shm, the memory-backed folder every container has.
FROM ${PYTHON_IMAGE} AS serve
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
    MNIST_PORT=8000
RUN python -m compileall -q service
USER mnist
# HTTP (MNIST_PORT) and gRPC (MNIST_GRPC_PORT), Triton's pair.
EXPOSE 8000 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('MNIST_PORT', '8000') + '/v2/health/ready'; sys.exit(urllib.request.urlopen(url, timeout=4).status != 200)"]
CMD ["python", "-m", "service"]
