"""The analysts' web console under /console, beside the API on the daemon's HTTP server
(docs/console.md).

    app = with_console(build_api(...), sources=Sources(live=feed, probes=manager))
    async with ApiServer(config, app): ...   # /v1/... and /console/...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import exports

if TYPE_CHECKING:
    from .app import Console, Sources
    from .compose import with_console
    from .live import LiveFeed
    from .sessions import SessionLimits

__getattr__ = exports(
    __name__,
    {
        "Console": ".app",
        "Sources": ".app",
        "with_console": ".compose",
        "LiveFeed": ".live",
        "SessionLimits": ".sessions",
    },
)

__all__ = ["Console", "LiveFeed", "SessionLimits", "Sources", "with_console"]
