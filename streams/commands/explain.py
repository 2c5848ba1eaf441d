"""``scorer explain EVENT_ID``: why one event got its decision, as a reason table."""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson
from confluent_kafka import TopicPartition
from rich.console import Console
from rich.table import Table

from schemas.errors import ScorerError
from streams.commands.tail import reader
from streams.settings import Settings, load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="find an event's decision and explanation and show why",
        description="Scan the decisions and explanations topics for EVENT_ID (newest "
        "first is not guaranteed: topics are scanned from their start) and print the "
        "decision, the model version that made it, and every feature's contribution.",
    )
    parser.add_argument("event_id")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to scan (30)")
    parser.set_defaults(func=_explain)


def find(settings: Settings, topic: str, event_id: str, timeout: float) -> dict[str, Any] | None:
    """The newest record of ``topic`` whose event_id header is ``event_id``."""
    consumer, partitions = reader(settings, topic)
    wanted = event_id.encode()
    remaining = {}
    assignment = []
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        if high > low:
            remaining[tp.partition] = high - 1
            assignment.append(TopicPartition(topic, tp.partition, low))
    consumer.assign(assignment)
    found = None
    deadline = time.monotonic() + timeout
    try:
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is not None:
                    continue
                headers = dict(message.headers() or [])
                if headers.get("event_id") == wanted:
                    found = orjson.loads(message.value() or b"{}")
                partition, offset = int(message.partition() or 0), int(message.offset() or 0)
                if offset >= remaining.get(partition, -1):
                    remaining.pop(partition, None)
    finally:
        consumer.close()
    return found


def _explain(args: argparse.Namespace) -> int:
    settings = load_settings()
    decision = find(settings, settings.topic_decisions, args.event_id, args.timeout)
    if decision is None:
        raise ScorerError(f"no decision for event {args.event_id!r} in {settings.topic_decisions}")
    explanation = find(settings, settings.topic_explanations, args.event_id, args.timeout)
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
