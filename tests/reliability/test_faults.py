"""Process faults on a live ``python -m service``: SIGTERM drains in-flight requests and exits 0;
with several workers, one killed by SIGKILL is replaced and the service keeps answering.
"""

import os
import signal
from pathlib import Path

import httpx

from tests.reliability.payloads import valid_png
from tests.support.live_server import LiveService, live_service, start_upload

IN_FLIGHT = 4
ANSWERS_WHILE_REPLACING = 20


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(model_path: Path) -> None:
    service = LiveService(model_path)
    try:
        service.wait_until_ready()
        image = valid_png()
        uploads = [start_upload(service, image) for _ in range(IN_FLIGHT)]
        service.process.send_signal(signal.SIGTERM)
        service.wait_for_log("Waiting for connections to close")
        answers = []
        for connection in uploads:
            connection.send(image)
            answers.append(connection.read_response())
            connection.close()
    finally:
        exit_code = service.stop()
    assert [status for status, _ in answers] == [200] * IN_FLIGHT
    assert all(b'"digit"' in body for _, body in answers)
    assert exit_code == 0, service.log_text()


def test_a_killed_worker_is_replaced_and_the_service_keeps_answering(model_path: Path) -> None:
    with live_service(model_path, workers=2) as service:
        first, second = service.worker_pids()
        os.kill(first, signal.SIGKILL)
        service.wait_for_log(f"Child process [{first}] died")
        for _ in range(ANSWERS_WHILE_REPLACING):
            response = httpx.post(
                f"{service.url}/predict",
                content=valid_png(),
                headers={"content-type": "image/png"},
            )
            assert response.status_code == 200, response.text
        service.wait_until_ready(workers=3)
        replacement = service.worker_pids()[-1]
        assert replacement not in (first, second)
        os.kill(replacement, 0)
        os.kill(second, 0)
    assert service.process.returncode == 0, service.log_text()
