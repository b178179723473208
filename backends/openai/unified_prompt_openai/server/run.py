"""Running the app on uvicorn: in the foreground (`unified-prompt serve`) or in a thread
on a free port (tests, benchmarks: a real ASGI server on a real socket)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from unified_prompt_openai.server.config import ServeConfig

GRACE_S = 3  # at SIGTERM, requests in flight get this long before they are cancelled


class _QuietDrops(logging.Filter):
    """Injected dropped connections make uvicorn log an error each; they are intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def _uvicorn_config(app: Any, config: ServeConfig, log_level: str) -> Any:
    import uvicorn

    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    return uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level,
                          access_log=False, lifespan="off", timeout_keep_alive=30,
                          backlog=2048, timeout_graceful_shutdown=GRACE_S)


def serve_forever(config: ServeConfig, log_level: str = "info") -> None:
    import uvicorn

    from unified_prompt_openai.server.app import create_app

    app = create_app(config)
    try:
        uvicorn.Server(_uvicorn_config(app, config, log_level)).run()
    finally:
        shutdown(app)


def shutdown(asgi: Any) -> None:
    """Stop the server's background work: running jobs are cancelled (their saved state
    stays unfinished) and the backend worker ends."""
    server = asgi.app.state.server
    server.jobs.close()
    server.inference.worker.close()


class ServerThread:
    """`with ServerThread(config) as srv:` -> srv.base_url serves until the block ends."""

    def __init__(self, config: ServeConfig, *, port: int = 0, wrap: Any = None,
                 log_level: str = "warning", backend: Any = None) -> None:
        """`port=0` picks a free port; `wrap(app)` may put test middleware around the app;
        `backend` serves an already-built backend instead of creating `config.backend`."""
        import uvicorn

        from unified_prompt_openai.server.app import create_app

        self.asgi = create_app(config, backend)
        self.app = wrap(self.asgi) if wrap is not None else self.asgi
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((config.host, port))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://{config.host}:{self.port}/v1"
        self.server = uvicorn.Server(_uvicorn_config(self.app, config, log_level))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        daemon=True, name=f"serve-{self.port}")

    @property
    def state(self) -> Any:
        return self.asgi.app.state.server

    @property
    def log(self) -> Any:
        """Every /v1 exchange: method, path, status, injected fault."""
        return self.asgi.log

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self.sock.close()
        shutdown(self.asgi)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
