"""`python -m gateway.api.openapi > docs/openapi.json`: the API's OpenAPI document.

The routes do not touch their services while the document is built, so none is needed here.
"""

from __future__ import annotations

import json
import sys
from typing import Any, cast

from gateway.cases import Cases
from gateway.registry import Registry
from gateway.store import Store

from .app import build_api


def document() -> dict[str, Any]:
    app = build_api(cast(Cases, _Unused()), cast(Registry, _Unused()), cast(Store, _Unused()), {})
    return app.openapi()


def render() -> str:
    """The committed form: sorted keys, two-space indents, a final newline."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Unused:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None  # bound methods taken at build time, never called


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
