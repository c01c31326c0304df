#!/usr/bin/env bash
# Container smoke test: prove the Dockerfile by building and running it.
#
# Starts a private Docker daemon, makes a Debian bookworm base image with debootstrap
# (no container registry is needed), builds the serving image on it and runs it as it
# is meant to be deployed: read-only root filesystem, unprivileged user, settings from
# the environment. Then checks that it gets ready and healthy, classifies real MNIST
# test digits over HTTP and over gRPC, runs as non-root and stops cleanly. The container
# and the daemon are always stopped, by PID, however the script ends.
#
# Usage, as root:  MNIST_DIR=../shared/data/mnist bash tests/container/smoke.sh
#   MNIST_DIR  folder with the MNIST IDX files (t10k-*), relative to the current
#              directory or else to the repo root; default ../shared/data/mnist.
# The debootstrapped tree is cached in ${XDG_CACHE_HOME:-~/.cache}/mnist-mlp (delete it
# to run cold); without the cache the script makes it again.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO_ROOT
readonly HELPER=$REPO_ROOT/tests/container/smoke_helper.py
readonly CACHE_DIR=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mnist-mlp
readonly SUITE=bookworm
readonly BASE_PACKAGES=python3,python3-venv,ca-certificates
readonly BASE_TREE=$CACHE_DIR/debian-$SUITE-minbase-python3.tar
readonly BASE_TREE_MAX_DAYS=30
readonly BASE_TAG=mnist-mlp-base:$SUITE
readonly IMAGE_TAG=mnist-mlp:smoke
# MNIST test images to classify: the first few, which any usable model gets right.
readonly DIGIT_INDICES=(0 1 2 3 4)
readonly WORKERS=2
readonly READY_TIMEOUT=120
readonly HEALTHY_TIMEOUT=60

SCRIPT_START=$(date +%s.%N)
WORK_DIR=""
DOCKERD_PID=""
CONTAINER_ID=""
GRPC_PORT=""
BASE_SOURCE=""
BUILD_SECONDS=""
BUILDER=""
READY_SECONDS=""

log() { printf '[smoke %6ss] %s\n' "$(seconds_since "$SCRIPT_START")" "$*"; }
die() { log "FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
seconds_since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }
helper() { python3 "$HELPER" "$@"; }

# The client talks only to the daemon this script started, whatever DOCKER_HOST says,
# and keeps its config out of the user's home. It is the docker on PATH, as the README's
# user has it, with the builder it picks by itself (BuildKit through buildx where the
# plugin is installed, else the legacy builder): the Dockerfile must build with either.
docker_cli() {
    env -u DOCKER_BUILDKIT DOCKER_CONFIG=$WORK_DIR/docker-config \
        docker --host "unix://$WORK_DIR/docker.sock" "$@"
}

resolve_mnist_dir() {
    local dir=${MNIST_DIR:-../shared/data/mnist}
    if [[ $dir != /* && ! -d $dir ]]; then
        dir=$REPO_ROOT/$dir
    fi
    [[ -d $dir ]] || die "MNIST_DIR $dir is not a folder: point it at the MNIST IDX files"
    MNIST_DIR=$(cd "$dir" && pwd)
}

install_tools() {
    local missing=()
    command -v dockerd >/dev/null && command -v docker >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    ((${#missing[@]} == 0)) && return
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=300
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
        "${missing[@]}" >/dev/null
}

# dockerd gets its own socket, exec root and pid file, so it never meets a system
# daemon; no bridge and no iptables, since containers use the host's network. If the
# kernel refuses overlay2, vfs is slower but works anywhere.
start_dockerd() {
    local driver
    for driver in overlay2 vfs; do
        dockerd --storage-driver="$driver" --iptables=false --ip-forward=false --bridge=none \
            --data-root "$WORK_DIR/docker" --exec-root "$WORK_DIR/exec" \
            --pidfile "$WORK_DIR/dockerd.pid" --host "unix://$WORK_DIR/docker.sock" \
            </dev/null >"$WORK_DIR/dockerd.log" 2>&1 &
        DOCKERD_PID=$!
        if wait_for_dockerd; then
            log "dockerd running (PID $DOCKERD_PID, storage driver $driver)"
            return
        fi
        log "dockerd did not start with $driver:"
        tail -n 5 "$WORK_DIR/dockerd.log"
        stop_dockerd
        rm -rf "$WORK_DIR/docker"
    done
    die "could not start dockerd"
}

wait_for_dockerd() {
    local deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        kill -0 "$DOCKERD_PID" 2>/dev/null || return 1
        docker_cli version >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

stop_dockerd() {
    [[ -n $DOCKERD_PID ]] || return 0
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$DOCKERD_PID" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
        log "dockerd (PID $DOCKERD_PID) ignored SIGTERM; killing it"
        kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    fi
    wait "$DOCKERD_PID" 2>/dev/null || true
    log "dockerd (PID $DOCKERD_PID) stopped"
    # A clean shutdown stops the containerd that dockerd started; a killed one cannot.
    local containerd_pid
    containerd_pid=$(cat "$WORK_DIR/exec/containerd/containerd.pid" 2>/dev/null || true)
    if [[ -n $containerd_pid ]] && kill -0 "$containerd_pid" 2>/dev/null; then
        kill -TERM "$containerd_pid" 2>/dev/null || true
    fi
    DOCKERD_PID=""
}

# Overlay mounts left behind by a daemon that had to be killed would block rm -rf.
release_mounts() {
    findmnt -rn -o TARGET | grep -F "$WORK_DIR/" | sort -r | while read -r target; do
        umount -l "$target" 2>/dev/null || true
    done
}

cleanup() {
    local status=$?
    set +e
    if [[ -n $CONTAINER_ID ]]; then
        if ((status != 0)); then
            log "last container logs:"
            docker_cli logs --tail 40 "$CONTAINER_ID" 2>&1
        fi
        docker_cli rm --force "$CONTAINER_ID" >/dev/null 2>&1
    fi
    stop_dockerd
    if [[ -n $WORK_DIR ]]; then
        release_mounts
        rm -rf "$WORK_DIR"
    fi
    log "cleaned up; exit status $status"
    exit "$status"
}

# A minimal Debian with python3 and venv, like python:3.11-slim: apt lists and
# archives, docs, man pages and translations removed.
bootstrap_debian() {
    local rootfs=$1 mirror
    mirror=$(helper debian-mirror "$SUITE")
    log "base: debootstrap $SUITE from this machine's apt mirror (cold, about a minute)"
    if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$mirror" \
        >"$WORK_DIR/debootstrap.log" 2>&1; then
        tail -n 20 "$WORK_DIR/debootstrap.log"
        die "debootstrap failed"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
}

# The cache only saves time: failing to write it is not an error.
cache_base_tree() {
    local rootfs=$1 partial=$BASE_TREE.partial.$$
    if mkdir -p "$CACHE_DIR" 2>/dev/null \
        && tar -C "$rootfs" --numeric-owner -cf "$partial" . 2>/dev/null \
        && mv "$partial" "$BASE_TREE"; then
        log "base: cached the tree in $BASE_TREE"
    else
        rm -f "$partial"
        log "base: could not write the cache in $CACHE_DIR; carrying on without it"
    fi
}

restore_base_tree() {
    local rootfs=$1
    [[ -n $(find "$BASE_TREE" -mtime -"$BASE_TREE_MAX_DAYS" 2>/dev/null) ]] || return 1
    tar -C "$rootfs" --numeric-owner -xf "$BASE_TREE" 2>/dev/null
}

# pip in the build reaches the package index through this machine's TLS-intercepting
# proxy, so the image must trust the host's extra CAs and use the host's portable pip
# settings. This is done to the locally made base, never in the Dockerfile.
adapt_base_to_host() {
    local rootfs=$1 cert
    for cert in /usr/local/share/ca-certificates/*.crt; do
        if [[ -f $cert ]]; then
            cp "$cert" "$rootfs/usr/local/share/ca-certificates/"
        fi
    done
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed"
    helper pip-conf >"$rootfs/etc/pip.conf"
}

make_base_image() {
    local rootfs=$WORK_DIR/rootfs
    mkdir -p "$rootfs"
    if restore_base_tree "$rootfs"; then
        BASE_SOURCE="cached tree"
        log "base: reusing $BASE_TREE"
    else
        rm -rf "$rootfs" && mkdir -p "$rootfs"
        bootstrap_debian "$rootfs"
        cache_base_tree "$rootfs"
        BASE_SOURCE="debootstrap"
    fi
    adapt_base_to_host "$rootfs"
    # docker import leaves the environment empty; set what Debian's images set.
    tar -C "$rootfs" --numeric-owner -c . | docker_cli import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' - "$BASE_TAG" >/dev/null
    rm -rf "$rootfs"
    log "base: imported $BASE_TAG"
}

build_image() {
    local start proxy_args=() var
    # Docker's predefined proxy arguments, passed on only when this machine sets them.
    for var in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
        if [[ -n ${!var:-} ]]; then
            proxy_args+=(--build-arg "$var")
        fi
    done
    log "building $IMAGE_TAG from $REPO_ROOT (docker $(docker_cli version --format '{{.Client.Version}}'))"
    start=$(now)
    if ! docker_cli build --network=host \
        --build-arg "PYTHON_IMAGE=$BASE_TAG" "${proxy_args[@]}" \
        --tag "$IMAGE_TAG" "$REPO_ROOT" >"$WORK_DIR/build.log" 2>&1; then
        tail -n 40 "$WORK_DIR/build.log"
        die "docker build failed"
    fi
    BUILD_SECONDS=$(seconds_since "$start")
    if grep -q "legacy builder is deprecated" "$WORK_DIR/build.log"; then
        BUILDER="the legacy builder (no buildx plugin)"
    else
        BUILDER="BuildKit"
    fi
    log "built in ${BUILD_SECONDS}s with $BUILDER"
}

container_running() {
    [[ $(docker_cli inspect --format '{{.State.Running}}' "$CONTAINER_ID" 2>/dev/null) == true ]]
}

# Runs the image as deployed: read-only root filesystem with nothing writable mounted,
# settings from the environment, the host's network on a free port. Two workers, since
# that is the configuration that needs temporary files; a 1 s health interval, so the
# HEALTHCHECK verdict comes without waiting the image's 30 s.
run_container() {
    local port start
    port=$(helper free-port)
    GRPC_PORT=$(helper free-port)
    BASE_URL=http://127.0.0.1:$port
    start=$(now)
    CONTAINER_ID=$(docker_cli run --detach --network=host --read-only \
        --env "MNIST_PORT=$port" --env "MNIST_GRPC_PORT=$GRPC_PORT" --env "MNIST_WORKERS=$WORKERS" \
        --health-interval=1s --health-start-period=60s \
        "$IMAGE_TAG")
    local deadline=$((SECONDS + READY_TIMEOUT))
    until helper probe "$BASE_URL/v2/health/ready"; do
        container_running || die "the container exited before it was ready"
        ((SECONDS < deadline)) || die "not ready after ${READY_TIMEOUT}s"
        sleep 0.1
    done
    READY_SECONDS=$(seconds_since "$start")
    log "ready on port $port with $WORKERS workers, ${READY_SECONDS}s after docker run"
}

check_healthy() {
    local status deadline=$((SECONDS + HEALTHY_TIMEOUT))
    while status=$(docker_cli inspect --format '{{.State.Health.Status}}' "$CONTAINER_ID"); do
        case $status in
            healthy) log "HEALTHCHECK reports healthy"; return ;;
            unhealthy)
                docker_cli inspect --format '{{json .State.Health.Log}}' "$CONTAINER_ID"
                die "HEALTHCHECK reports unhealthy"
                ;;
        esac
        ((SECONDS < deadline)) || die "HEALTHCHECK still '$status' after ${HEALTHY_TIMEOUT}s"
        sleep 0.5
    done
    die "could not read the container's health"
}

# Both the image's user and every process actually running in the container.
check_not_root() {
    local image_uid process_uids
    image_uid=$(docker_cli exec "$CONTAINER_ID" id -u)
    process_uids=$(docker_cli top "$CONTAINER_ID" -o pid,uid | awk 'NR > 1 { print $2 }' | sort -u | xargs)
    [[ $image_uid != 0 ]] || die "the image runs as root"
    [[ -n $process_uids && ! " $process_uids " =~ " 0 " ]] ||
        die "processes in the container run as uid(s): $process_uids"
    log "runs as uid $image_uid (processes: uid $process_uids)"
}

check_predictions() {
    local index label png
    for index in "${DIGIT_INDICES[@]}"; do
        png=$WORK_DIR/mnist-test-$index.png
        label=$(helper digit-png "$MNIST_DIR" "$index" "$png")
        log "POST /predict $(helper predict "$BASE_URL/predict" "$png" "$label")"
    done
}

# Over gRPC too, with the image's own Python as the client (the host's needs no grpcio):
# grpc.health.v1 readiness, then one ModelInfer of the same digits with raw contents.
check_grpc_predictions() {
    local index answer digits=()
    for index in "${DIGIT_INDICES[@]}"; do
        digits+=("$(helper digit-hex "$MNIST_DIR" "$index")")
    done
    answer=$(docker_cli exec -i "$CONTAINER_ID" python - "127.0.0.1:$GRPC_PORT" "${digits[@]}" \
        <"$REPO_ROOT/tests/container/grpc_client.py") || die "classifying over gRPC failed"
    log "$answer"
}

# docker stop sends SIGTERM to the server, which runs as PID 1: it must shut down by
# itself, and cleanly, rather than be killed when the grace period ends.
check_clean_stop() {
    local start exit_code
    start=$(now)
    docker_cli stop --time 20 "$CONTAINER_ID" >/dev/null
    exit_code=$(docker_cli inspect --format '{{.State.ExitCode}}' "$CONTAINER_ID")
    [[ $exit_code == 0 ]] || die "the server exited with $exit_code on SIGTERM"
    log "stopped cleanly on SIGTERM in $(seconds_since "$start")s"
}

report() {
    local size_bytes verdict
    size_bytes=$(docker_cli image inspect --format '{{.Size}}' "$IMAGE_TAG")
    verdict=$(helper image-size "$REPO_ROOT/README.md" "$size_bytes") || die "the README's image size is stale"
    log "$verdict"
    cat <<EOF

Container smoke test passed
  image size     $(awk -v b="$size_bytes" 'BEGIN { printf "%.0f MB (%.0f MiB)", b / 1e6, b / 1048576 }')  $IMAGE_TAG
  time to ready  ${READY_SECONDS} s (docker run -> GET /v2/health/ready 200, $WORKERS workers)
  image build    ${BUILD_SECONDS} s with $BUILDER (base image from: $BASE_SOURCE)
  total          $(seconds_since "$SCRIPT_START") s
EOF
}

main() {
    ((EUID == 0)) || die "run as root: it starts its own Docker daemon"
    resolve_mnist_dir
    install_tools
    # Under /tmp rather than $TMPDIR: containerd's socket path must stay short.
    WORK_DIR=$(mktemp -d /tmp/mnist-smoke.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_dockerd
    make_base_image
    build_image
    run_container
    check_healthy
    check_not_root
    check_predictions
    check_grpc_predictions
    check_clean_stop
    report
}

main "$@"
