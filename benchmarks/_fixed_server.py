"""A minimal API stand-in answering every project GET with one fixed body, for client-overhead benchmarks.

Run as ``python -m benchmarks._fixed_server --port N``.
"""

from __future__ import annotations

import argparse
import json

from aiohttp import web

BODY = json.dumps(
    {
        "id": "clx7uu86w0a5qp55yxz315r6r",
        "name": "Example Name",
        "status": "complete",
        "type": "FACE_SWAP",
        "created_at": "2024-10-19T05:16:19.027Z",
        "width": 512,
        "height": 960,
        "enabled": True,
        "start_seconds": 0.0,
        "end_seconds": 10.5,
        "total_frame_cost": 450,
        "credits_charged": 450,
        "fps": 30.0,
        "error": None,
        "downloads": [
            {"url": "https://videos.magichour.ai/id/output.mp4", "expires_at": "2024-10-19T05:16:19.027Z"}
        ],
        "download": None,
    }
).encode()


async def project(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/v1/{kind}-projects/{id}", project)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
