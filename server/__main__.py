"""``python -m server``: serve gridmap with a production WSGI server (gunicorn)."""

from __future__ import annotations

import argparse
import sys

from . import config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description="Serve gridmap.")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 5000)")
    parser.add_argument("--data-dir", help="data directory (default ./gridmap-data; filled with the demo when empty)")
    parser.add_argument("--workers", type=int, help="server processes (default 2)")
    return parser


def warm_up(app) -> None:
    """Compute the analysis and the map's first layers once, here, before the workers fork and share them."""
    from maps.coverage_map import MAP_DATA

    client = app.test_client()
    for layer in MAP_DATA:
        client.get(f"/map/data/{layer}.geojson", headers={"Accept-Encoding": "gzip"})


def serve(options: dict) -> None:
    from gunicorn.app.base import BaseApplication

    from . import create_app

    app = create_app(options)  # once, before forking: the demo is installed a single time
    warm_up(app)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{app.config['HOST']}:{app.config['PORT']}")
            self.cfg.set("workers", app.config["WORKERS"])
            self.cfg.set("threads", app.config["THREADS"])
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 120)
            self.cfg.set("control_socket_disable", True)  # one per user otherwise: servers would share it

        def load(self):
            return app

    print(f"gridmap: serving {app.config['DATA_DIR']} on http://{app.config['HOST']}:{app.config['PORT']}/",
          flush=True)
    Server().run()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        print(f"python -m server: error: --port must be 1-65535, not {args.port}", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"python -m server: error: --workers must be at least 1, not {args.workers}", file=sys.stderr)
        return 2
    serve({"HOST": args.host, "PORT": args.port, "DATA_DIR": args.data_dir, "WORKERS": args.workers})
    return 0


if __name__ == "__main__":
    sys.exit(main())
