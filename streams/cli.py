"""The ``scorer`` command: one sub-command module per concern, under ``streams.commands``.

Each command module has ``register(subparsers)``, which adds its parser and sets
``func(args) -> int`` on it. Errors the scorer raises on purpose end the process with a
one-line reason and exit status 1; argparse's usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from schemas.errors import ScorerError
from streams.commands import COMMAND_MODULES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scorer",
        description=(
            "Score Kafka event streams with explainable, monitored models. "
            "KAFKA_BOOTSTRAP_SERVERS names an existing cluster; otherwise the local broker "
            "(`scorer broker up`) is used. Every setting is also a SCORER_<NAME> variable."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except ScorerError as exc:
        print(f"scorer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scorer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
