"""``jkspnet serve``: the web page and HTTP API of :func:`jkspnet.serve.app.create_app`."""

from __future__ import annotations

import argparse

from ..serve.api import json_errors_protocol
from ..serve.app import (
    DEFAULT_MAX_BYTES,
    DEFAULT_PIXELS_IN_FLIGHT,
    DEFAULT_SERVER_MAX_PIXELS,
    DEFAULT_UPLOAD_TIMEOUT_S,
    DEFAULT_UPLOADS_PER_CLIENT,
    create_app,
    require_web,
)
from .options import (
    EXIT_OK,
    add_model_options,
    colorizer_from_options,
    positive_float,
    positive_int,
)

HELP = "serve a local web page and HTTP API that colorize photos"
DESCRIPTION = (
    "Serve the JKSPNet web page at http://HOST:PORT/ (colour points, the "
    "uncertainty overlay) and the API at /api/colorize (hints, reference), "
    "/api/uncertainty and /api/health, described at /docs (served offline) and "
    "/openapi.json. Needs the web extra: pip install 'jkspnet[web]'. Binds to 127.0.0.1 "
    "unless --host says otherwise."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=positive_int, default=8000, help="port (8000)")
    add_model_options(parser)
    parser.set_defaults(max_pixels=DEFAULT_SERVER_MAX_PIXELS, batch_size=8)
    for action in parser._actions:
        if action.dest == "max_pixels":
            action.help = (
                f"refuse photos declaring more pixels (default {DEFAULT_SERVER_MAX_PIXELS:,})"
            )
        elif action.dest == "batch_size":
            action.help = "most photos per network pass when requests arrive together (8)"
    parser.add_argument(
        "--max-bytes",
        type=positive_int,
        default=DEFAULT_MAX_BYTES,
        help=f"refuse uploads larger than this many bytes (default {DEFAULT_MAX_BYTES:,})",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="threads running the model (1)"
    )
    parser.add_argument(
        "--queue",
        type=positive_int,
        default=16,
        help="most requests waiting beyond those being worked on; more get 503 (16)",
    )
    parser.add_argument(
        "--max-pixels-in-flight",
        type=positive_int,
        default=DEFAULT_PIXELS_IN_FLIGHT,
        metavar="N",
        help="most pixels of photos worked on at once, from their headers (a bigger photo only "
        f"alone); more get 503. Bounds memory: about 27 bytes a pixel "
        f"(default {DEFAULT_PIXELS_IN_FLIGHT:,})",
    )
    parser.add_argument(
        "--upload-timeout",
        type=positive_float,
        default=DEFAULT_UPLOAD_TIMEOUT_S,
        metavar="SECONDS",
        help=f"an upload must arrive within this long, else 408 "
        f"(default {DEFAULT_UPLOAD_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--uploads-per-client",
        type=positive_int,
        default=DEFAULT_UPLOADS_PER_CLIENT,
        metavar="N",
        help="most uploads arriving at once from one address; more get 429 "
        f"(default {DEFAULT_UPLOADS_PER_CLIENT})",
    )


def run(args: argparse.Namespace) -> int:
    require_web()
    import uvicorn

    colorizer = colorizer_from_options(args)
    app = create_app(
        colorizer,
        max_bytes=args.max_bytes,
        max_pixels=args.max_pixels,
        workers=args.workers,
        queue_size=args.queue,
        max_batch=args.batch_size,
        max_pixels_in_flight=args.max_pixels_in_flight,
        upload_timeout_s=args.upload_timeout,
        uploads_per_client=args.uploads_per_client,
    )
    print(f"JKSPNet on {colorizer.device}: http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", http=json_errors_protocol()
    )
    return EXIT_OK
