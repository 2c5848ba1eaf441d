"""``scorer topics apply``: create or update the topics of ``infra/topics.yaml``."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.kafka.clients import admin_client, require_broker
from streams.kafka.topics import apply_topics, load_topic_specs
from streams.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="create or update the scorer's topics",
        description="Manage the topics declared in infra/topics.yaml.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    apply = actions.add_parser(
        "apply",
        help="create missing topics and align partitions and configs (idempotent)",
        description=(
            "Create missing topics, raise partition counts and set the listed configs. "
            "Never deletes a topic or lowers partitions; a second run changes nothing."
        ),
    )
    apply.add_argument("--file", type=Path, default=None, help="topic spec (infra/topics.yaml)")
    apply.set_defaults(func=_apply)


def _apply(args: argparse.Namespace) -> int:
    settings = load_settings()
    specs = load_topic_specs(settings, args.file)
    require_broker(settings, hint="; start one with `scorer broker up`")
    changes = apply_topics(admin_client(settings), specs)
    for change in changes:
        print(f"{change.action:<10} {change.topic}: {change.detail}")
    if all(c.action == "unchanged" for c in changes):
        print(f"all {len(specs)} topics already as specified; nothing changed")
    return 0
