"""``scorer dlq republish``: re-publish dead letters to the events topic, fixed and checked."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from models.registry import Registry
from schemas.contracts import RejectReason
from schemas.errors import ConfigError
from streams.dlq.fix import Fix
from streams.dlq.plan import Candidate, Outcome, Selection
from streams.dlq.republish import DEFAULT_GROUP, Republisher, RepublishRun
from streams.kafka.clients import require_broker
from streams.settings import load_settings

_EPILOG = """\
a fix file is JSON, never code; sections "fields", "features", "context", each with
"rename", "remove", "map", "default", "set", applied in that order, e.g.
  {"features": {"map": {"car": {"SEDAN": 3}}, "default": {"elevel": 0}}}

examples:
  scorer dlq republish --dry-run                  list what would be republished
  scorer dlq republish --reason UNKNOWN_CATEGORY  once a promoted model knows the category
  scorer dlq republish --reason MISSING_FEATURE --fix fix.json --max 100
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="republish dead letters to the events topic",
        description="Work with the dead-letter topic.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    republish = actions.add_parser(
        "republish",
        help="re-publish dead letters (optionally fixed) to the events topic, once each",
        description="Read the dead-letter topic, select dead letters, optionally edit them "
        "with a fix file, check each exactly as the scorer would (the decoder and the serving "
        "model's feature spec) and re-publish those that pass to the events topic under their "
        "original key, with headers naming the dead letter. Records that would be rejected "
        "again stay in the DLQ. Each dead letter is republished once: the tool's consumer "
        "group records what it published (--again republishes again).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    republish.add_argument(
        "--reason",
        action="append",
        choices=[r.value for r in RejectReason],
        metavar="REASON",
        help="only dead letters with this reject reason (repeatable), e.g. UNKNOWN_CATEGORY",
    )
    republish.add_argument("--partition", type=int, help="only this DLQ partition")
    republish.add_argument("--from", dest="from_offset", type=int, help="first DLQ offset")
    republish.add_argument("--to", dest="to_offset", type=int, help="last DLQ offset (inclusive)")
    republish.add_argument("--max", dest="max_records", type=int, help="publish at most N records")
    republish.add_argument("--fix", type=Path, metavar="FILE.json", help="edits to apply first")
    republish.add_argument(
        "--dry-run", action="store_true", help="show what would be published; publish nothing"
    )
    republish.add_argument("--again", action="store_true", help="include already republished ones")
    republish.add_argument("--model", help="model whose champion checks the records (SCORER_MODEL)")
    republish.add_argument(
        "--group",
        default=DEFAULT_GROUP,
        help=f"the republish ledger's consumer group ({DEFAULT_GROUP})",
    )
    republish.add_argument("--show", action="store_true", help="print each value to publish")
    republish.set_defaults(func=_republish)


def _selection(args: argparse.Namespace, events_topic: str) -> Selection:
    for flag, value in (("--from", args.from_offset), ("--to", args.to_offset),
                        ("--partition", args.partition)):  # fmt: skip
        if value is not None and value < 0:
            raise ConfigError(f"{flag} must not be negative")
    if args.max_records is not None and args.max_records < 1:
        raise ConfigError("--max must be at least 1")
    if None not in (args.from_offset, args.to_offset) and args.from_offset > args.to_offset:
        raise ConfigError(f"--from {args.from_offset} is after --to {args.to_offset}")
    return Selection(
        reasons=frozenset(args.reason or ()),
        source_topic=events_topic,
        partition=args.partition,
        from_offset=args.from_offset,
        to_offset=args.to_offset,
        max_records=args.max_records,
    )


def _republish(args: argparse.Namespace) -> int:
    settings = load_settings(model=args.model)
    selection = _selection(args, settings.topic_events)
    fix = Fix.load(args.fix) if args.fix else None
    require_broker(settings)  # one line, before the republisher's clients are made
    registry = Registry(settings.registry)
    spec = registry.manifest(settings.model, registry.resolve(settings.model)).feature_spec
    republisher = Republisher(settings, group=args.group)
    try:
        run = republisher.run(selection, fix=fix, spec=spec, again=args.again, dry_run=args.dry_run)
    finally:
        republisher.close()
    for candidate in run.plan.candidates:
        print(_line(candidate, run.dry_run, args.show))
    print(_summary(run))
    return 0


def _line(candidate: Candidate, dry_run: bool, show: bool) -> str:
    letter = candidate.letter
    reason = letter.reason.value if letter else "-"
    event = (letter.event_id if letter else None) or "-"
    where = f"dlq[{candidate.partition}]@{candidate.offset}"
    outcome = candidate.outcome
    if outcome is Outcome.PUBLISH:
        verb = "would publish" if dry_run else "published"
        text = f"{where}  {reason:<17} {event}  {verb}"
        if show and candidate.value is not None:
            text += "  " + candidate.value.decode(errors="replace")[:400]
        return text
    return f"{where}  {reason:<17} {event}  {outcome.value}  {candidate.detail}".rstrip()


def _summary(run: RepublishRun) -> str:
    plan = run.plan
    publish = len(plan.to_publish)
    head = (
        f"dry run: {publish} would be published to {run.target_topic}"
        if run.dry_run
        else f"published {run.published} to {run.target_topic}"
    )
    counts = Counter({o: plan.count(o) for o in Outcome if o is not Outcome.PUBLISH})
    counts[Outcome.ALREADY_REPUBLISHED] += run.skipped
    listed = ", ".join(f"{n} {o.value}" for o, n in counts.items() if n)
    return f"{head}; {run.records_read} dead letters read" + (f"; {listed}" if listed else "")
