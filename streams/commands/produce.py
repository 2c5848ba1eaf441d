"""``scorer produce --demo``: publish Agrawal loan applications as an upstream system would."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator

import orjson
from confluent_kafka import Producer

from models.datasets import LabelledEvent, agrawal_stream
from schemas.errors import BrokerError, ConfigError
from streams.kafka.clients import producer as kafka_producer
from streams.kafka.reader import TopicReader
from streams.settings import load_settings

DEFAULT_SEED = 8
"""Neither ``scorer train``'s default seed (7) nor the one below it (the stream's drifted part
is drawn with seed + 1): with the training seed the demo events would be the model's own
training rows, labels and all."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "produce",
        help="publish demo events (and optionally their labels)",
        description=(
            "Publish synthetic loan applications (river's Agrawal generator) to the events "
            "topic, keyed by entity_id. --drift-at switches the concept and shifts the loan "
            "amount from that event on; --feedback also publishes each event's label to the "
            "feedback topic, as a downstream system would once the outcome is known."
        ),
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        required=True,
        help="publish generated demo events (the only source for now)",
    )
    parser.add_argument("--count", type=int, default=10_000, help="events to publish (10000)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="events per second; 0 publishes as fast as possible (default)",
    )
    parser.add_argument(
        "--drift-at", type=int, default=None, help="event number where drift starts"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"generator seed ({DEFAULT_SEED}; `scorer train` draws its rows with 7, and the "
        "same seed would publish exactly those training rows)",
    )
    parser.add_argument("--feedback", action="store_true", help="also publish labels")
    parser.add_argument("--run-id", default=None, help="event id prefix (random by default)")
    parser.set_defaults(func=_produce)


def demo_stream(args: argparse.Namespace) -> Iterator[LabelledEvent]:
    """The labelled events ``scorer produce --demo`` publishes, as its arguments ask."""
    return agrawal_stream(args.count, seed=args.seed, drift_at=args.drift_at, run_id=args.run_id)


def _produce(args: argparse.Namespace) -> int:
    if args.count < 0 or args.rate < 0:
        raise ConfigError("--count and --rate must not be negative")
    settings = load_settings()
    topics = [settings.topic_events] + ([settings.topic_feedback] if args.feedback else [])
    with TopicReader(settings) as reader:  # a missing topic would only time out deliveries
        for topic in topics:
            reader.partitions(topic)
    producer = kafka_producer(settings)
    failures: list[str] = []

    def delivered(error: object, message: object) -> None:
        if error is not None:
            failures.append(str(error))

    started = time.monotonic()
    for i, labelled in enumerate(demo_stream(args)):
        if args.rate > 0:
            ahead = started + i / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        event = labelled.event
        key = event["entity_id"].encode()
        _send(producer, settings.topic_events, key, orjson.dumps(event), delivered)
        if args.feedback:
            label = {
                "event_id": event["event_id"],
                "label": labelled.label,
                "label_time": event["event_time"],
            }
            _send(
                producer,
                settings.topic_feedback,
                event["event_id"].encode(),
                orjson.dumps(label),
                delivered,
            )
        if failures:
            break
    remaining = producer.flush(30)
    if failures or remaining:
        raise BrokerError(
            f"publishing failed: {failures[0] if failures else f'{remaining} undelivered'}"
        )
    elapsed = time.monotonic() - started
    print(
        f"published {args.count} events to {settings.topic_events} in {elapsed:.1f}s",
        file=sys.stderr,
    )
    return 0


def _send(
    producer: Producer, topic: str, key: bytes, value: bytes, callback: Callable[..., None]
) -> None:
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=callback)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.1)
