"""``scorer tail``: the latest records of an output topic, one readable line each."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import orjson

from schemas.errors import ConfigError
from streams.kafka.reader import TopicReader
from streams.settings import load_settings

KINDS = {
    "decisions": "topic_decisions",
    "explanations": "topic_explanations",
    "alerts": "topic_drift_alerts",
    "fairness": "topic_fairness_reports",
    "dlq": "topic_dlq",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tail",
        help="show the latest decisions, explanations, alerts, fairness reports or dead letters",
        description="Print the last N records of each partition of an output topic, oldest "
        "first, one line each (or the raw JSON); --follow keeps printing new ones.",
    )
    parser.add_argument("kind", choices=sorted(KINDS), help="which output topic")
    parser.add_argument("-n", "--lines", type=int, default=10, help="records per partition (10)")
    parser.add_argument("--follow", action="store_true", help="keep printing new records")
    parser.add_argument("--json", action="store_true", help="print each record's JSON value")
    parser.set_defaults(func=_tail)


def _tail(args: argparse.Namespace) -> int:
    if args.lines < 0:
        raise ConfigError("--lines must not be negative")
    settings = load_settings()
    topic = getattr(settings, KINDS[args.kind])
    render = FORMATS[args.kind]
    with TopicReader(settings) as reader:
        ranges = reader.latest_ranges(topic, args.lines)
        records = sorted(reader.records(topic, ranges), key=lambda r: r.timestamp_ms)
        for record in records:
            print(_line(record.value, args.json, render))
        if args.follow:
            try:
                for record in reader.follow(topic, {p: end for p, (_, end) in ranges.items()}):
                    print(_line(record.value, args.json, render), flush=True)
            except KeyboardInterrupt:
                pass
    return 0


def _line(value: bytes | None, as_json: bool, render: Callable[[dict[str, Any]], str]) -> str:
    if as_json:
        return (value or b"null").decode(errors="replace")
    try:
        return render(orjson.loads(value or b"{}"))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return f"(unreadable record: {exc})"


def _decision(d: dict[str, Any]) -> str:
    reasons = ",".join(code["code"] for code in d["reason_codes"]) or "-"
    shadow = " shadow" if d.get("shadow") else ""
    return (
        f"{d['scored_at']}  {d['event_id']}  {d['decision']:<7} score={d['score']:.3f}  "
        f"{d['model']['name']} v{d['model']['version']}{shadow}  reasons={reasons}"
    )


def _explanation(e: dict[str, Any]) -> str:
    top = ", ".join(f"{f}={e['contributions'][f]:+.3f}" for f in e["top_features"][:3])
    return (
        f"{e['event_id']}  base={e['base_value']:+.3f} -> {e['output_value']:+.3f}  "
        f"{top}  (additivity error {e['additivity_error']:.1e})"
    )


def _alert(a: dict[str, Any]) -> str:
    retrain = f"  retrain ({a['retrain_rule']})" if a["retrain_recommended"] else ""
    return (
        f"{a['detected_at']}  {a['monitor_id']:<22} {a['status']:<8} {a['severity']:<8} "
        f"{a['statistic']}={a['value']:.2f} > {a['threshold']:.2f}  "
        f"window {a['window']['start_time']}..{a['window']['end_time']}{retrain}"
    )


def _fairness(r: dict[str, Any]) -> str:
    ratio = r.get("disparate_impact_ratio")
    groups = " ".join(f"{g['group']}:{g['selection_rate']:.2f}" for g in r["groups"])
    di = "-" if ratio is None else f"{ratio:.3f}"
    return f"{r['generated_at']}  {r['attribute']}  {r['status']:<17} DI={di}  {groups}"


def _dead_letter(d: dict[str, Any]) -> str:
    cut = (
        f"  [cut: record of {d['original_size_bytes']} bytes]"
        if d.get("original_truncated")
        else ""
    )
    return (
        f"{d['failed_at']}  {d['reason']:<17} {d['source_topic']}[{d['source_partition']}]"
        f"@{d['source_offset']}  {d['detail'][:120]}{cut}"
    )


FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "decisions": _decision,
    "explanations": _explanation,
    "alerts": _alert,
    "fairness": _fairness,
    "dlq": _dead_letter,
}
