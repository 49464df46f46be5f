"""Run one Faust worker process for the settings in the environment."""

from __future__ import annotations

import logging

from streams.app import create_app
from streams.settings import Settings


def run_worker(settings: Settings) -> None:
    """Block running a worker until SIGINT/SIGTERM."""
    from faust.worker import Worker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    if settings.metrics_access == "port":  # /metrics off the API, on its own port of the same host
        from prometheus_client import start_http_server

        from streams.metrics import REGISTRY

        start_http_server(settings.metrics_port, addr=settings.web_host, registry=REGISTRY)
    logging.getLogger("faust").setLevel(settings.log_level.upper().replace("CRIT", "CRITICAL").replace("WARN", "WARNING"))
    worker = Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
