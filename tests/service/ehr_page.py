"""A CDS Hooks response drawn as an EHR draws it: one box per card, a bar in the indicator's
colour, the summary, the detail's markdown as HTML, the suggestions as buttons, the links
underlined, the source at the foot. Self-contained (no script, no remote file), so a browser
test can say the page asked for nothing else.
"""

from __future__ import annotations

import html
from typing import Any

COLOURS = {"info": (31, 111, 235), "warning": (210, 153, 34), "critical": (207, 34, 46)}


def _rgb(indicator: str) -> str:
    r, g, b = COLOURS[indicator]
    return f"rgb({r},{g},{b})"


def card_html(card: dict[str, Any]) -> str:
    from markdown_it import MarkdownIt

    detail = MarkdownIt("commonmark", {"html": False}).render(card.get("detail", ""))
    buttons = "".join(f'<button class="suggestion">{html.escape(s["label"])}</button>'
                      for s in card.get("suggestions", []))
    links = "".join(f'<a href="{html.escape(link["url"])}">{html.escape(link["label"])}</a>'
                    for link in card.get("links", []))
    source = card["source"]
    label = html.escape(source["label"])
    source_html = f'<a href="{html.escape(source["url"])}">{label}</a>' if source.get("url") else label
    return (f'<section class="card" style="border-left-color:{_rgb(card["indicator"])}">'
            f'<div class="indicator" style="background:{_rgb(card["indicator"])}">{card["indicator"]}</div>'
            f'<h2>{html.escape(card["summary"])}</h2><div class="detail">{detail}</div>'
            f'<div class="actions">{buttons}{links}</div><footer>Source: {source_html}</footer></section>')


def page(response: dict[str, Any], title: str = "Discharge — decision support") -> str:
    cards = "".join(card_html(c) for c in response["cards"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body {{ font-family: sans-serif; background: #f3f4f6; margin: 0; padding: 24px; color: #1f2328; }}
header.ehr {{ background: #24292f; color: white; padding: 12px 20px; font-size: 18px; margin: -24px -24px 24px; }}
.card {{ background: white; border-left: 14px solid; border-radius: 6px; padding: 16px 24px; margin-bottom: 18px;
        box-shadow: 0 1px 3px rgba(0,0,0,.2); max-width: 900px; }}
.indicator {{ display: inline-block; color: white; padding: 2px 10px; border-radius: 10px; font-size: 12px;
             text-transform: uppercase; }}
h2 {{ font-size: 20px; margin: 10px 0; }}
.actions a {{ margin-left: 14px; text-decoration: underline; color: #0969da; }}
button.suggestion {{ background: #0969da; color: white; border: 0; border-radius: 5px; padding: 8px 14px; }}
footer {{ margin-top: 12px; color: #57606a; font-size: 13px; }}
</style></head><body><header class="ehr">{html.escape(title)}</header>{cards}</body></html>"""
