"""``scorer schemas export``: publish the contracts as JSON Schema files and AsyncAPI 3.0."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from schemas.export import write_asyncapi, write_json_schemas
from streams.kafka.topics import load_topic_specs
from streams.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schemas", help="export the record contracts (JSON Schema, AsyncAPI)"
    )
    actions = parser.add_subparsers(dest="schemas_action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write <Contract>.schema.json files and/or asyncapi.json",
        description=(
            "Write one Draft 2020-12 JSON Schema per record contract and an AsyncAPI 3.0 "
            "document of every topic, with topic names as currently configured."
        ),
    )
    export.add_argument(
        "--format",
        choices=("jsonschema", "asyncapi", "all"),
        default="all",
        help="what to write (default: all)",
    )
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    export.add_argument(
        "--topics",
        type=Path,
        metavar="FILE",
        help="topic specification (default: SCORER_TOPICS_FILE or infra/topics.yaml)",
    )
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    settings = load_settings()
    written: list[Path] = []
    if args.format in ("jsonschema", "all"):
        written.extend(write_json_schemas(args.out))
    if args.format in ("asyncapi", "all"):
        written.append(write_asyncapi(args.out, load_topic_specs(settings, args.topics), settings))
    for path in written:
        print(path)
    return 0
