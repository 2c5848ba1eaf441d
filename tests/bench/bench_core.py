"""Throughput of the scoring core alone (no Kafka): events/s by model, batch size, explanations.

Run with ``make bench`` or ``python tests/bench/bench_core.py [--events N]``. Each cell scores
the same pre-generated events, repeated until ``--seconds`` have passed, on one core; all
cells run side by side in one process so their ratios are comparable. The last line printed
is one JSON object with the headline figures. The garbage collector is tuned as the
engines tune it (streams/runtime.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.datasets import agrawal, agrawal_events
from models.registry import Registry
from models.scoring_model import ScoringModel
from models.training import train
from streams.core.scoring import score_batch
from streams.runtime import tune_garbage_collector
from tests.bench.external_models import FAMILIES, register_external

BATCH_SIZES = (1, 100, 1000)


def build_models(rows: int, seed: int) -> dict[str, ScoringModel]:
    dataset = agrawal(rows, seed=seed)
    registry = Registry(Path(tempfile.mkdtemp(prefix="bench-registry-")))
    models = {}
    for kind in ("logistic", "gbt"):
        trained = train(dataset, kind, seed=seed)
        manifest = registry.register(
            trained.estimator, name=f"bench-{kind}", kind=kind,
            manifest_fields=trained.manifest_fields,
        )  # fmt: skip
        models[kind] = ScoringModel.from_loaded(registry.load(manifest.name, manifest.version))
    return models


def build_external(rows: int, seed: int) -> dict[str, ScoringModel]:
    """Each family of models trained elsewhere, fitted on the same Agrawal rows."""
    registry = Registry(Path(tempfile.mkdtemp(prefix="bench-registry-")))
    manifests = register_external(registry, rows, seed)
    return {
        family: ScoringModel.from_loaded(registry.load(m.name, m.version))
        for family, m in manifests.items()
    }


def measure(
    model: ScoringModel, events: list[dict], batch: int, explain: bool, seconds: float
) -> float:
    batches = [events[i : i + batch] for i in range(0, len(events) - batch + 1, batch)]
    for chunk in batches[:3]:  # warm up
        score_batch(model, chunk, explain=explain)
    scored = 0
    start = time.perf_counter()
    for chunk in itertools.cycle(batches):
        score_batch(model, chunk, explain=explain)
        scored += len(chunk)
        if time.perf_counter() - start >= seconds:
            break
    return scored / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="distinct events (20000)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per cell (2.0)")
    parser.add_argument("--train-rows", type=int, default=20_000, help="training rows (20000)")
    parser.add_argument(
        "--external-rows", type=int, default=5_000,
        help=f"rows the models from elsewhere are fitted on (5000): {', '.join(FAMILIES)}",
    )  # fmt: skip
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    models = build_models(args.train_rows, seed=11)
    external = build_external(args.external_rows, seed=11)
    events = list(agrawal_events(args.events, seed=12))
    tune_garbage_collector()  # as the engines do after start-up
    results: dict[str, float] = {}
    print(f"{'model':<18}{'explain':<9}" + "".join(f"{'batch ' + str(b):>14}" for b in BATCH_SIZES))
    rows = [(kind, model, explain) for kind, model in models.items() for explain in (False, True)]
    rows += [(family, model, True) for family, model in external.items()]  # from elsewhere
    for name, model, explain in rows:
        cells = []
        for batch in BATCH_SIZES:
            rate = measure(model, events, batch, explain, args.seconds)
            results[f"{name}_{'explained' if explain else 'plain'}_b{batch}"] = round(rate)
            cells.append(f"{rate:>12,.0f}/s")
        print(f"{name:<18}{'yes' if explain else 'no':<9}" + "".join(cells))
    print(json.dumps({"benchmark": "scoring_core", "unit": "events_per_second", **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
