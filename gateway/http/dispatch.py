"""One HTTP server, several ASGI applications by path prefix: the API (bearer tokens, checked
in front of it by its own RequestGuard) and the console under /console (session cookies,
checked by the console, with its own guard on bodies).

    app = PathDispatch(api_app, {"/console": console_app})

A request for `/console` or under `/console/` goes to the console with `root_path` set, so its
routes are written relative to the prefix; everything else goes to the default application
unchanged, and so do lifespan events.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send


class PathDispatch:
    def __init__(self, default: ASGIApp, prefixed: Mapping[str, ASGIApp]) -> None:
        for prefix in prefixed:
            if not prefix.startswith("/") or prefix.endswith("/"):
                raise ValueError(f"a prefix starts with / and does not end with one: {prefix!r}")
        self.default = default
        self.prefixed = dict(prefixed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            for prefix, app in self.prefixed.items():
                if path == prefix or path.startswith(prefix + "/"):
                    root = scope.get("root_path", "") + prefix
                    # Starlette routes on the path below root_path; the bare prefix is its "/"
                    path = path if path != prefix else prefix + "/"
                    await app({**scope, "path": root + path[len(prefix):], "root_path": root},
                              receive, send)  # fmt: skip
                    return
        await self.default(scope, receive, send)
