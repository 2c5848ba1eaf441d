"""A whole HTML page from sections of figures and tables: one file, no external resources.

>>> html = render_page("Report", [Section("s1", "Scores", figures=[Figure("<svg></svg>")])])
>>> html.startswith("<!DOCTYPE html>"), 'id="s1"' in html, "http" in html
(True, True, False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape


@dataclass(frozen=True)
class Figure:
    """A plot (SVG markup from :mod:`streams.report.plots`) and its caption."""

    svg: str
    caption: str = ""


@dataclass(frozen=True)
class Section:
    """A titled part of the page; ``html`` is trusted markup (e.g. from :func:`table`)."""

    id: str
    title: str
    intro: str = ""
    figures: Sequence[Figure] = field(default_factory=tuple)
    html: str = ""


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def note(text: str) -> str:
    """A muted paragraph, e.g. for an empty section."""
    return f'<p class="empty">{escape(text)}</p>'


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c8d1dc}nav{padding:8px 24px;background:#e9edf2}
nav a{margin-right:16px;color:#1f2d3d}main{padding:8px 24px 40px}
section{margin-top:22px}h2{font-size:17px;border-bottom:1px solid #d5dbe3;padding-bottom:4px}
.figures{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #e1e5ea;padding:6px;border-radius:4px}
figcaption{font-size:12px;color:#555;max-width:420px}
svg.plot{display:block;max-width:100%;height:auto}
.plot-title{font-size:13px;font-weight:600;fill:#222}.tick,.legend{font-size:10px;fill:#444}
.grid{stroke:#e3e6ea;stroke-width:1}.limit{stroke:#c0392b;stroke-dasharray:4 3}
table.data{border-collapse:collapse;background:#fff;margin:8px 0}
table.data th,table.data td{border:1px solid #dde2e8;padding:3px 8px;text-align:left}
table.data th{background:#f0f3f6}.empty{color:#777;font-style:italic}
"""


def render_page(
    title: str, sections: Sequence[Section], *, subtitle: str = "", footer: str = ""
) -> str:
    """The HTML document: a header, a section index, the sections, and inline CSS only."""
    nav = "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        parts = [f'<section id="{escape(s.id)}"><h2>{escape(s.title)}</h2>']
        if s.intro:
            parts.append(f"<p>{escape(s.intro)}</p>")
        if s.figures:
            parts.append('<div class="figures">')
            for f in s.figures:
                caption = f"<figcaption>{escape(f.caption)}</figcaption>" if f.caption else ""
                parts.append(f"<figure>{f.svg}{caption}</figure>")
            parts.append("</div>")
        parts.append(s.html)
        parts.append("</section>")
        body.append("".join(parts))
    sub = f"<p>{escape(subtitle)}</p>" if subtitle else ""
    foot = f'<footer><p class="empty">{escape(footer)}</p></footer>' if footer else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1>{sub}</header><nav>{nav}</nav>"
        f"<main>{''.join(body)}</main>{foot}</body></html>\n"
    )
