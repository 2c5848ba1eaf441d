"""``scorer replay``: score recorded traffic with a candidate and compare with the champion.

Reads recorded events (and the champion's decisions and any labels) without joining a
consumer group, scores them with the candidate through the scoring core, and prints the
comparison; ``--json FILE`` writes the full report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from models.registry import Registry
from models.scoring_model import ScoringModel
from schemas.errors import ConfigError
from streams.release.page import render_replay
from streams.release.replay import parse_position, replay_report
from streams.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="score recorded traffic with a candidate model and compare with the champion",
        description=(
            "Read recorded events from the events topic with a consumer that joins no group "
            "and commits nothing, score them with the candidate through the same scoring "
            "core as `scorer serve`, and compare with the champion's recorded decisions "
            "(joined by event_id): decision flips by direction, score shift, reason-code "
            "changes, fairness per context group, and AUC and accuracy where feedback labels "
            "exist. Without --from, the most recent --max events are read."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="NAME[:VERSION]",
        help="the candidate: a version number or alias after the colon (default: latest)",
    )
    parser.add_argument(
        "--from",
        dest="start",
        metavar="TIME|P:OFFSET,...",
        help="first event: an ISO 8601 time (naive means UTC) or offsets like 0:100,1:250",
    )
    parser.add_argument(
        "--to",
        dest="end",
        metavar="TIME|P:OFFSET,...",
        help="stop before this time or these offsets (default: the end of each partition now)",
    )
    parser.add_argument(
        "--max", type=int, default=50_000, metavar="N", help="at most N events (50000)"
    )
    parser.add_argument(
        "--min-group-count",
        type=int,
        default=30,
        metavar="N",
        help="context groups smaller than N are left out of fairness ratios (30)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON report")
    parser.add_argument("--out", type=Path, metavar="FILE.html",
                        help="also write the comparison as an HTML page with plots")  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=120.0, metavar="S", help="seconds to read (120)"
    )
    parser.add_argument(
        "--registry",
        type=Path,
        default=None,
        metavar="DIR",
        help="registry directory (default: SCORER_REGISTRY, else var/registry)",
    )
    parser.set_defaults(func=_replay)


def split_model(text: str) -> tuple[str, str]:
    """``NAME[:VERSION]`` into name and version reference (``latest`` when absent).

    >>> split_model("loans:3"), split_model("loans"), split_model("loans:champion")
    (('loans', '3'), ('loans', 'latest'), ('loans', 'champion'))
    """
    name, _, version = text.partition(":")
    if not name:
        raise ConfigError(f"--model {text!r}: expected NAME or NAME:VERSION")
    return name, version or "latest"


def _replay(args: argparse.Namespace) -> int:
    if args.max < 1:
        raise ConfigError(f"--max must be at least 1, got {args.max}")
    if args.min_group_count < 1:
        raise ConfigError(f"--min-group-count must be at least 1, got {args.min_group_count}")
    settings = load_settings()
    registry = Registry(args.registry or settings.registry)
    name, ref = split_model(args.model)
    model = ScoringModel.from_loaded(registry.load(name, registry.resolve(name, ref)))
    report, _ = replay_report(
        settings,
        model,
        start=parse_position(args.start) if args.start else None,
        end=parse_position(args.end) if args.end else None,
        max_events=args.max,
        min_group_count=args.min_group_count,
        timeout=args.timeout,
    )
    print(render(report))
    if args.json:
        try:
            args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.json}: {exc.strerror}") from exc
        print(f"\nreport written to {args.json}")
    if args.out:
        try:
            args.out.write_text(render_replay(report), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.out}: {exc.strerror}") from exc
        print(f"HTML report written to {args.out}")
    return 0


# --- the readable report --------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    """The report as readable text: one block per section."""
    c = report["candidate"]
    champions = ", ".join(f"{k}: {v}" for k, v in report["champion_versions"].items())
    e = report["events"]
    lines = [
        f"replay of {c['name']} v{c['version']} against recorded decisions of "
        f"{champions or 'no champion'}",
        f"source   {report['source']['events_topic']} "
        f"{report['source']['first_record_time'] or '-'} .. "
        f"{report['source']['last_record_time'] or '-'}",
        f"events   {e['records']} records, {e['undecodable']} undecodable, "
        f"{e['duplicates']} duplicates; candidate scored {e['scored_by_candidate']}, "
        f"rejected {e['rejected_by_candidate']}; {e['with_champion_decision']} with a "
        f"champion decision, {e['labelled']} labelled",
    ]
    lines += [f"note     {note}" for note in report["source"]["notes"]]
    if e["rejected_by_candidate"]:
        lines.append(
            f"rejects  {e['candidate_reject_reasons']}; e.g. {e['candidate_reject_example']}"
        )
    if not report["compared"]:
        lines.append("nothing to compare: no recorded event has a champion decision")
        return "\n".join(lines)
    lines += ["", *_flips(report["flips"]), "", *_scores(report["score_shift"])]
    lines += ["", *_reasons(report["reason_codes"])]
    for attribute, sides in report["fairness"].items():
        lines += ["", *_fairness(attribute, sides)]
    lines += ["", *_performance(report["performance"])]
    return "\n".join(lines)


def _flips(flips: dict[str, Any]) -> list[str]:
    labels = list(flips["matrix"])
    width = max(9, *(len(label) + 2 for label in labels))
    lines = [
        f"flips    {flips['flip_rate']:.2%} of {flips['compared']} decisions change "
        f"({flips['flipped']}; {flips['newly_adverse']} newly adverse, "
        f"{flips['newly_favourable']} newly favourable)",
        "         champion \\ candidate".ljust(30)
        + "".join(label.rjust(width) for label in labels),
    ]
    for before in labels:
        row = "".join(str(flips["matrix"][before][after]).rjust(width) for after in labels)
        lines.append(f"         {before}".ljust(30) + row)
    directions = ", ".join(f"{d} {n}" for d, n in flips["by_direction"].items())
    lines.append(f"         by direction: {directions or 'none'}")
    return lines


def _scores(shift: dict[str, Any]) -> list[str]:
    quantiles = "  ".join(f"{q} {v:+.3f}" for q, v in shift["quantiles"].items())
    return [
        f"score    mean {shift['champion_mean']:.4f} -> {shift['candidate_mean']:.4f} "
        f"(shift {shift['mean']:+.4f}, sd {shift['std']:.4f}, mean |shift| "
        f"{shift['mean_abs']:.4f}, max |shift| {shift['max_abs']:.4f})",
        f"         shift quantiles {quantiles}",
    ]


def _reasons(reasons: dict[str, Any]) -> list[str]:
    gained = ", ".join(f"{k} {v}" for k, v in list(reasons["gained"].items())[:4]) or "none"
    lost = ", ".join(f"{k} {v}" for k, v in list(reasons["lost"].items())[:4]) or "none"
    return [
        f"reasons  {reasons['compared']} adverse under both: reason set changed for "
        f"{reasons['changed']} ({reasons['changed_rate']:.2%}), first reason for "
        f"{reasons['first_changed']}",
        f"         gained: {gained}; lost: {lost}",
    ]


def _fairness(attribute: str, sides: dict[str, Any]) -> list[str]:
    champion, candidate = sides["champion"], sides["candidate"]
    lines = [
        f"fairness {attribute} (selection rate = share approved; groups under "
        f"{champion['min_group_count']} events left out of the ratio)",
        f"         {'group':<14}{'count':>8}{'champion':>10}{'candidate':>11}",
    ]
    for group, rates in champion["groups"].items():
        new = candidate["groups"][group]["selection_rate"]
        lines.append(
            f"         {group:<14}{rates['count']:>8}{rates['selection_rate']:>10.3f}{new:>11.3f}"
        )
    lines.append(
        f"         {'DI ratio':<22}{_number(champion['disparate_impact_ratio']):>10}"
        f"{_number(candidate['disparate_impact_ratio']):>11}"
    )
    return lines


def _performance(performance: dict[str, Any]) -> list[str]:
    if not performance["labelled"]:
        return ["perf     no labels in the feedback topic for these events"]
    champion, candidate = performance["champion"], performance["candidate"]
    return [
        f"perf     {performance['labelled']} labelled events: ROC AUC "
        f"{_number(champion['roc_auc'])} -> {_number(candidate['roc_auc'])}, accuracy "
        f"{_number(champion['accuracy'])} -> {_number(candidate['accuracy'])}"
    ]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
