"""``scorer alerts``: drift episodes and fairness, as an operator needs to read them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from schemas.errors import ConfigError
from streams.kafka.reader import json_objects, read_latest
from streams.monitoring.overview import alert_overview
from streams.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="open and resolved drift episodes, and the latest fairness per attribute",
        description=(
            "Read the recent drift alerts and fairness reports and show, per drift episode, "
            "its latest state (open or resolved, with the statistic against its threshold, "
            "the window, and whether retraining is recommended and by which rule), then, per "
            "context attribute, the latest fairness report with its groups. Exit status 0; "
            "with --fail-on-open, 3 when an episode is open (for scripts and probes)."
        ),
    )
    parser.add_argument("-n", "--records", type=int, default=1000,
                        help="records read from the end of each topic (1000)")  # fmt: skip
    parser.add_argument("--model", help="only this model's alerts and reports")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--fail-on-open", action="store_true",
                        help="exit 3 when a drift episode is open")  # fmt: skip
    parser.set_defaults(func=_alerts)


def _alerts(args: argparse.Namespace) -> int:
    if args.records < 1:
        raise ConfigError("--records must be at least 1")
    settings = load_settings()
    summary = alert_overview(
        json_objects(read_latest(settings, settings.topic_drift_alerts, args.records)),
        json_objects(read_latest(settings, settings.topic_fairness_reports, args.records)),
        args.model,
    )
    if args.json:
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print(summary)
    return 3 if args.fail_on_open and summary["open"] else 0


def _print(summary: dict[str, Any]) -> None:
    console = Console()
    for state in ("open", "resolved"):
        table = Table("monitor", "statistic", "window (event time)", "severity", "model",
                      "retrain", title=f"{state} drift episodes")  # fmt: skip
        for a in summary[state]:
            window = a["window"]
            table.add_row(
                a["monitor_id"],
                f"{a['statistic']} {a['value']:.1f} vs {a['threshold']:.1f}",
                f"{window.get('start_time')} .. {window.get('end_time')} "
                f"({window.get('events')} events)",
                a["severity"],
                f"{a['model']['name']}:v{a['model']['version']}",
                a.get("retrain_rule") or "no",
            )
        if not summary[state]:
            table.add_row("none", "", "", "", "", "")
        console.print(table)
    table = Table("attribute (basis)", "status", "DI ratio", "parity diff", "TPR / FPR gap",
                  "groups (count, selection rate)", "windows alerted",
                  title="fairness, latest window")  # fmt: skip
    for item in summary["fairness"]:
        r = item["latest"]
        table.add_row(
            item["basis"].removeprefix("fairness:"),
            r["status"],
            _number(r.get("disparate_impact_ratio")),
            _number(r.get("demographic_parity_difference")),
            f"{_number(r.get('tpr_gap'))} / {_number(r.get('fpr_gap'))}",
            ", ".join(
                f"{g['group']} ({g['count']}, {g['selection_rate']:.2f})" for g in r["groups"]
            ),
            str(item["alert_windows"]),
        )
    if not summary["fairness"]:
        table.add_row("none", "", "", "", "", "", "")
    console.print(table)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
