"""``scorer learn``: online learning for a river champion; learned versions are registered."""

from __future__ import annotations

import argparse

from schemas.errors import ConfigError
from streams.kafka.clients import require_broker
from streams.learning.learner import LearnerService
from streams.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "learn",
        help="keep a river champion learning from labels; register learned versions",
        description=(
            "Start from the champion version of a river model (train with --model "
            "river-logistic), join each label the outcome join joined (the outcomes topic) to "
            "the features the decision scored "
            "(checked against the decision's input_hash), score it, then learn from it. "
            "After every N learned labels the model is registered as the next version with "
            "the prequential metrics of those labels and a 'registered' ModelEvent. Nothing "
            "is promoted: promote a learned version like any other. Stops on SIGTERM/Ctrl-C."
        ),
    )
    parser.add_argument("--model", help="registered river model (SCORER_MODEL, default demo)")
    parser.add_argument("--every", type=int, default=5_000,
                        help="learned labels per registered version (5000)")  # fmt: skip
    parser.add_argument("--max-versions", type=int,
                        help="stop after this many versions (default: run on)")  # fmt: skip
    parser.add_argument("--registry", help="model registry directory (SCORER_REGISTRY)")
    parser.set_defaults(func=_learn)


def _learn(args: argparse.Namespace) -> int:
    if args.every < 2:
        raise ConfigError("--every must be at least 2 labels")
    if args.max_versions is not None and args.max_versions < 1:
        raise ConfigError("--max-versions must be at least 1")
    settings = load_settings(model=args.model, registry=args.registry)
    require_broker(settings)  # one line, before the service's clients are made
    service = LearnerService(settings, settings.model, args.every)
    service.install_signal_handlers()
    versions = service.run(max_versions=args.max_versions)
    print(f"registered {settings.model} version(s): {', '.join(map(str, versions)) or 'none'}")
    return 0
