"""``scorer explain EVENT_ID``: why one event got its decision, as a reason table."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from schemas.errors import ScorerError
from streams.report.lookup import find_event
from streams.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="find an event's decision and explanation and show why",
        description="Scan the decisions and explanations topics for EVENT_ID (newest "
        "first is not guaranteed: topics are scanned from their start) and print the "
        "decision, the model version that made it, and every feature's contribution.",
    )
    parser.add_argument("event_id")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="give up when the broker sends nothing for this many seconds (30)",
    )
    parser.set_defaults(func=_explain)


def _explain(args: argparse.Namespace) -> int:
    settings = load_settings()
    decision, explanation = find_event(settings, args.event_id, args.timeout)
    if decision is None:
        raise ScorerError(f"no decision for event {args.event_id!r} in {settings.topic_decisions}")
    console = Console()
    model = decision["model"]
    console.print(
        f"[bold]{decision['event_id']}[/] ({decision['entity_id']}): "
        f"[bold]{decision['decision']}[/] with score {decision['score']:.3f} "
        f"(thresholds {decision['thresholds']}) by {model['name']} v{model['version']} "
        f"(artifact sha256 {model['sha256'][:12]}), scored at {decision['scored_at']}"
    )
    reasons = {code["feature"]: code for code in decision["reason_codes"]}
    if explanation is None:
        console.print("no explanation found (only the decision's reason codes are known)")
        contributions = {f: code["contribution"] for f, code in reasons.items()}
    else:
        contributions = explanation["contributions"]
        console.print(
            f"{explanation['method']}: base {explanation['base_value']:+.4f} + contributions "
            f"= {explanation['output_value']:+.4f} log-odds "
            f"(additivity error {explanation['additivity_error']:.1e})"
        )
    table = Table("feature", "contribution (log-odds)", "reason code", "reason")
    for feature, value in sorted(contributions.items(), key=lambda kv: -kv[1]):
        code = reasons.get(feature)
        table.add_row(
            feature, f"{value:+.4f}", code["code"] if code else "", code["text"] if code else ""
        )
    console.print(table)
    return 0
