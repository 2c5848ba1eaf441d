"""``scorer produce --demo`` publishes, by default, events the model was not trained on.

``scorer train --dataset agrawal`` and ``scorer produce --demo`` both draw from river's
Agrawal generator; drawn with the same seed, the produced events are the training rows, in
order and with their labels, and a demo would score the model on its own training data.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from streams.cli import build_parser, main
from streams.commands.produce import demo_stream
from streams.commands.train import training_data

TRAIN = ("train", "--dataset", "agrawal", "--model", "gbt", "--name", "demo", "--rows", "2000")
"""The README's ``scorer train`` (fewer rows: the seed decides which rows they are)."""


def _parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _rows(features: list[dict[str, Any]]) -> set[tuple[tuple[str, Any], ...]]:
    return {tuple(sorted(row.items())) for row in features}


def _produced(*argv: str) -> list[tuple[dict[str, Any], int]]:
    stream = demo_stream(_parsed("produce", "--demo", *argv))
    return [(labelled.event["features"], labelled.label) for labelled in stream]


def test_by_default_no_produced_event_is_a_training_row() -> None:
    training = _rows(training_data(_parsed(*TRAIN)).features)
    for argv in (("--count", "2000"), ("--count", "2000", "--drift-at", "1000")):
        produced = _rows([features for features, _ in _produced(*argv)])
        assert len(produced) == 2000
        assert len(produced & training) == 0, f"produce --demo {' '.join(argv)}"


def test_with_the_training_seed_the_producer_replays_the_training_rows() -> None:
    """Why the defaults must differ: the same seed gives the same rows and labels."""
    seed = str(_parsed(*TRAIN).seed)
    training = training_data(_parsed(*TRAIN))
    produced = _produced("--count", "2000", "--seed", seed)
    assert [features for features, _ in produced] == training.features
    assert [label for _, label in produced] == training.labels.tolist()


def test_the_default_seeds_differ_and_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    train_seed, produce_seed = _parsed(*TRAIN).seed, _parsed("produce", "--demo").seed
    assert train_seed != produce_seed
    with pytest.raises(SystemExit):
        main(["produce", "--help"])
    assert f"generator seed ({produce_seed}" in " ".join(capsys.readouterr().out.split())
