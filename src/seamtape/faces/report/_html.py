"""One self-contained HTML page from the report's document and the assets in ``web/``.

The page's script and style are inlined; the document goes in a ``<script
type="application/json">`` block with every ``<``, ``>`` and ``&`` escaped, so nothing a tape
holds can close the block or start markup. A Content-Security-Policy lets only the page's
own script run (by its hash) and, for a file, reach no network at all.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["asset_dir", "render_page", "script_json"]

_ASSETS = ("report.html", "report.css", "report.js")
_SLOT = re.compile(r"\{\{([A-Z_]+)\}\}")


def asset_dir() -> Path:
    """Where ``report.html``, ``report.css`` and ``report.js`` are: the repository's ``web/``
    folder, or the copy the wheel carries beside this module."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "web", here.parents[3] / "web"):
        if all((candidate / name).is_file() for name in _ASSETS):
            return candidate
    raise FileNotFoundError("the report's web assets (report.html, .css, .js) are missing")


@cache
def _assets() -> tuple[str, str, str]:
    folder = asset_dir()
    page, css, js = (folder / name for name in _ASSETS)
    return (
        page.read_text(encoding="utf-8"),
        css.read_text(encoding="utf-8"),
        js.read_text(encoding="utf-8"),
    )


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, no ``<!--``, no markup."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_page(data: dict[str, Any] | None, *, config: dict[str, Any], title: str) -> str:
    """The page: ``data`` inlined (a report file), or None when the page fetches it (live)."""
    page, css, js = _assets()
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    live = config.get("mode") == "live"
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'sha256-{digest}'",
            "style-src 'unsafe-inline'",
            "img-src data:",
            "connect-src 'self'" if live else "connect-src 'none'",
            "form-action 'none'",
            "base-uri 'none'",
        ]
    )
    slots = {
        "CSP": html.escape(csp, quote=False).replace('"', "&quot;"),
        "TITLE": html.escape(title, quote=False),
        "CSS": css.replace("</", "<\\/"),
        "CONFIG": script_json(config),
        "DATA": script_json(data),
        "JS": js,
    }
    # One pass: a value is never scanned for slots, so a tape's text cannot fill one.
    return _SLOT.sub(lambda m: slots[m.group(1)], page)
