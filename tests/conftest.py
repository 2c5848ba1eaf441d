"""Shared fixtures.

Models: ``train_model`` trains an Agrawal model once per session for each (kind, rows, seed,
classification function) a test asks for; ``register_models`` registers trained models as the
versions of one name, in a fresh registry or the test's own (:mod:`tests.support.models`).

Integration tests (marked ``kafka``) get a real Apache Kafka broker from the session-scoped
``kafka_bootstrap`` fixture: the local broker started once per run in a temporary folder on a
free port, or the cluster named by ``KAFKA_BOOTSTRAP_SERVERS``. Factory fixtures hand out
uniquely named topics and consumer groups, so tests never share state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from models.manifest import ModelKind
from models.registry import Registry
from models.training import TrainedModel
from streams.kafka.localbroker import LocalBroker, free_port_pair
from tests.support.kafka import unique
from tests.support.models import Registered, RegisterModels, TrainModel, register, train_agrawal


@pytest.fixture(scope="session")
def train_model() -> TrainModel:
    """``train_model(kind="logistic", *, rows, seed, classification_function=None)``: the
    model trained on those Agrawal rows, once per session (callers must not change it)."""
    trained: dict[tuple[object, ...], TrainedModel] = {}

    def get(
        kind: ModelKind = "logistic",
        *,
        rows: int,
        seed: int,
        classification_function: int | None = None,
    ) -> TrainedModel:
        key = (kind, rows, seed, classification_function)
        if key not in trained:
            trained[key] = train_agrawal(
                kind, rows=rows, seed=seed, classification_function=classification_function
            )
        return trained[key]

    return get


@pytest.fixture(scope="session")
def register_models(tmp_path_factory: pytest.TempPathFactory) -> RegisterModels:
    """``register_models(*trained, name="loans", registry=None, champion=None, actor="test")``:
    each trained model as the next version of ``name`` in ``registry`` (a fresh one when
    None), the champion alias on version ``champion`` if given."""

    def create(
        *trained: TrainedModel,
        name: str = "loans",
        registry: Registry | None = None,
        champion: int | None = None,
        actor: str = "test",
    ) -> list[Registered]:
        if registry is None:
            registry = Registry(tmp_path_factory.mktemp("registry"))
        return register(registry, *trained, name=name, champion=champion, actor=actor)

    return create


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = LocalBroker(port=free_port_pair(), home=tmp_path_factory.mktemp("kafka"))
    broker.up()
    try:
        yield broker.address
    finally:
        broker.down()


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def topic_factory(kafka_admin: AdminClient) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics; they are deleted when the test ends."""
    created: list[str] = []

    def create(prefix: str = "t", partitions: int = 3, config: dict[str, str] | None = None) -> str:
        name = unique(prefix)
        futures = kafka_admin.create_topics(
            [NewTopic(name, partitions, 1, config=config or {})], operation_timeout=30
        )
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield create
    if created:
        for future in kafka_admin.delete_topics(created, operation_timeout=30).values():
            future.result(timeout=30)


@pytest.fixture
def group_id_factory() -> Callable[[], str]:
    return lambda: unique("g")


@pytest.fixture
def producer_factory(kafka_bootstrap: str) -> Callable[..., Producer]:
    def create(**config: object) -> Producer:
        return Producer({"bootstrap.servers": kafka_bootstrap, **config})

    return create


@pytest.fixture
def consumer_factory(
    kafka_bootstrap: str, group_id_factory: Callable[[], str]
) -> Iterator[Callable[..., Consumer]]:
    """Consumers in fresh groups reading from the earliest offset; closed at the end."""
    consumers: list[Consumer] = []

    def create(**config: object) -> Consumer:
        settings = {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group_id_factory(),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        settings.update({k.replace("_", "."): v for k, v in config.items()})
        consumer = Consumer(settings)
        consumers.append(consumer)
        return consumer

    yield create
    for consumer in consumers:
        consumer.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration talks to a broker: mark it ``kafka``."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.kafka)


@pytest.fixture
def drain() -> Callable[..., list]:
    """Poll ``consumer`` until ``count`` messages arrived or ``timeout`` seconds passed."""
    import time

    def consume(consumer: Consumer, count: int, timeout: float = 30.0) -> list:
        messages: list = []
        deadline = time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=count - len(messages), timeout=0.5):
                if message.error() is None:
                    messages.append(message)
        return messages

    return consume
