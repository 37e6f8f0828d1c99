"""Runs the selected controllers until their stop event: starts each, then the informers they
asked for; stops the informers when done."""
from __future__ import annotations

import logging
import threading

from kubeapi.informer import InformerFactory
from kubeapi.restclient import ApiClient

from .context import ControllerContext, Options
from .registry import Controller

log = logging.getLogger("controller-manager")


def run(client: ApiClient, controllers: list[Controller], options: Options,
        stop: threading.Event, resync: float) -> None:
    """Blocks until `stop` is set."""
    factory = InformerFactory(client, resync=resync)
    ctx = ControllerContext(client, factory, stop, options)
    try:
        for controller in controllers:
            log.info("Starting controller %s", controller.name)
            controller.start(ctx)
        factory.start()
        log.info("Started %d controllers", len(controllers))
        stop.wait()
    finally:
        factory.stop()
        log.info("Stopped controllers")
