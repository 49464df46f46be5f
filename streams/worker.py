"""Run one Faust worker process for the settings in the environment."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from faust.worker import Worker

from streams.app import create_app
from streams.settings import Settings

log = logging.getLogger(__name__)


class FleetWorker(Worker):
    """Faust's worker, whose stop on SIGTERM/SIGINT is bounded by ``shutdown_timeout_s``.

    Past the bound the process exits with code 1: whatever it had not flushed and
    committed is replayed by the partition's next owner, so nothing is lost.
    """

    def __init__(self, app: Any, shutdown_timeout_s: float, **kwargs: Any) -> None:
        self.shutdown_timeout_s = shutdown_timeout_s
        super().__init__(app, **kwargs)

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        if not self._signal_stop_time:
            log.info("%s: stopping (draining for at most %g s)", signal.Signals(signum).name, self.shutdown_timeout_s)
            threading.Thread(target=self._exit_when_late, name="shutdown-watchdog", daemon=True).start()
        super()._schedule_shutdown(signum)

    def _exit_when_late(self) -> None:
        threading.Event().wait(self.shutdown_timeout_s)
        log.error("did not stop within %g s (FLEET_SHUTDOWN_TIMEOUT_S); exiting now: records not committed are "
                  "replayed by the next owner of their partitions", self.shutdown_timeout_s)
        logging.shutdown()
        os._exit(1)


def run_worker(settings: Settings) -> None:
    """Block running a worker until SIGINT/SIGTERM."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    if settings.metrics_access == "port":  # /metrics off the API, on its own port of the same host
        from prometheus_client import start_http_server

        from streams.metrics import REGISTRY

        start_http_server(settings.metrics_port, addr=settings.web_bind or settings.web_host, registry=REGISTRY)
    logging.getLogger("faust").setLevel(settings.log_level.upper().replace("CRIT", "CRITICAL").replace("WARN", "WARNING"))

    async def _end_streams(_: Any) -> None:  # the web server waits for open handlers: end SSE streams first
        app.alert_feed.close_subscribers()

    app.web.web_app.on_shutdown.append(_end_streams)
    worker = FleetWorker(app, settings.shutdown_timeout_s, loglevel=settings.log_level, quiet=True,
                         redirect_stdouts=False)
    worker.execute_from_commandline()
