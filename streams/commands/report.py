"""``scorer report``: one self-contained HTML page of drift, scores, alerts and fairness."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from schemas.errors import ConfigError
from streams.report.collect import collect_report, parse_since
from streams.report.sections import render_report
from streams.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write an HTML report: feature and score drift, alert timeline, fairness",
        description="Write one HTML file that needs no network: the champion's training "
        "reference against the latest events (per feature), the score distribution against "
        "recent decisions, drift-alert episodes over time, and the latest fairness report "
        "per protected attribute. Plots are inline SVG.",
    )
    parser.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    parser.add_argument("--model", help="registered model (SCORER_MODEL); its champion")
    parser.add_argument(
        "--events", type=int, default=5000, help="latest events and decisions to compare (5000)"
    )
    parser.add_argument(
        "--since", help="only records from this time: ISO-8601, or a duration back (30m, 2h, 1d)"
    )
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    if args.events < 1:
        raise ConfigError("--events must be at least 1")
    settings = load_settings(model=args.model)
    since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    data = collect_report(settings, model=settings.model, events=args.events, since=since)
    html = render_report(data)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {args.out}: {exc.strerror}") from exc
    print(
        f"wrote {args.out} ({len(html):,} bytes): {data.model} v{data.version}, "
        f"{data.events_read:,} events, {len(data.scores):,} decisions, "
        f"{len(data.alerts):,} alerts, {len(data.fairness):,} fairness reports"
    )
    return 0
