"""Throughput of decoding record values: decode_events against pydantic, side by side.

Run with ``python tests/bench/bench_decode.py [--batch N] [--seconds S]``. Both decoders read
the same serialised Agrawal events (orjson bytes, exactly what ``scorer produce`` sends) in
one process on one core: ``decode_events`` on whole batches, and
``ScoringEvent.model_validate_json`` once per value, as a validating consumer would. A third
row decodes a batch with one reject in a hundred, to show what rejects cost. For reference:
the C decode alone (msgspec into the typed mirror, the floor of the batch path), the
one-by-one loop every batch took before the batch path (and any batch with an unusual value
still takes), ``decode_events`` with the event dicts read too (as replay and reports
read them). Then what scoring needs besides the ids, the design matrix and the rendered
input hashes: from ``decode_events`` followed by the vectoriser and the batch's canonical
JSON, and from ``decode_events`` given the spec, as the engine calls it (the compiled
reader, which writes both while it reads). The last line printed is one JSON object with
the headline figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.datasets import agrawal_events, agrawal_spec
from models.featurespec import FeatureSpec
from schemas.contracts import ScoringEvent
from streams.core import decode, scoring
from streams.core._native import render
from streams.core.decode import EventColumns, decode_events
from streams.runtime import tune_garbage_collector


def measure(run: Callable[[], object], events: int, seconds: float) -> float:
    """Events per second for ``run`` (which decodes ``events`` events), over ``seconds``."""
    run()  # warm up
    done = 0
    start = time.perf_counter()
    while True:
        run()
        done += events
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def pydantic_batch(values: list[bytes]) -> list[ScoringEvent]:
    """The pydantic baseline: validate each value into a ScoringEvent."""
    return [ScoringEvent.model_validate_json(value) for value in values]


def with_matrix_and_hashes(columns: EventColumns, spec: FeatureSpec) -> object:
    """What scoring needs of decoded events besides the ids: the design matrix and the input
    hashes, rendered (taken from the columns when the compiled reader wrote them)."""
    X = columns.matrix_for(spec)
    if X is None:
        X = scoring._vectorise(spec, columns.features).X
    return X, render(len(columns), [scoring._input_hashes(columns)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="events per batch")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    tune_garbage_collector()

    values = [orjson.dumps(e) for e in agrawal_events(args.batch, seed=args.seed)]
    mixed = list(values)
    for i in range(0, len(mixed), 100):  # one reject in a hundred: an array as a feature
        mixed[i] = mixed[i].replace(b'"salary":', b'"salary":[1],"_":', 1)
    if len(decode_events(values).events) != len(values):
        print("bench values were rejected", file=sys.stderr)
        return 1
    spec = agrawal_spec()
    if decode_events(values, spec=spec).columns.matrix_for(spec) is None:
        print("the compiled reader declined the bench values", file=sys.stderr)
        return 1
    if len(decode_events(mixed).rejects) != -(-len(mixed) // 100):
        print("bench rejects were accepted", file=sys.stderr)
        return 1

    rates = {
        "decode_events": measure(lambda: decode_events(values), len(values), args.seconds),
        "pydantic_model_validate_json": measure(
            lambda: pydantic_batch(values), len(values), args.seconds
        ),
        "decode_events_1pct_rejects": measure(
            lambda: decode_events(mixed), len(mixed), args.seconds
        ),
        "c_decode_alone": measure(
            lambda: list(map(decode._FAST_DECODE, values)), len(values), args.seconds
        ),
        "decode_one_by_one": measure(
            lambda: decode._decode_each(values, decode.DEFAULT_MAX_BYTES), len(values), args.seconds
        ),
        "decode_events_then_dicts": measure(
            lambda: decode_events(values).events, len(values), args.seconds
        ),
        "decode_vectorise_hash": measure(
            lambda: with_matrix_and_hashes(decode_events(values).columns, spec),
            len(values),
            args.seconds,
        ),
        "decode_events_with_spec": measure(
            lambda: with_matrix_and_hashes(decode_events(values, spec=spec).columns, spec),
            len(values),
            args.seconds,
        ),
    }
    size = sum(map(len, values)) / len(values)
    print(f"{len(values)} Agrawal events per batch, {size:.0f} bytes each, one core")
    print(f"{'decoder':<32}{'µs/event':>10}{'events/s':>14}")
    for name, rate in rates.items():
        print(f"{name:<32}{1e6 / rate:>10.2f}{rate:>14,.0f}")
    speedup = rates["decode_events"] / rates["pydantic_model_validate_json"]
    print(f"decode_events is {speedup:.1f}x pydantic")
    print(
        json.dumps(
            {
                "bench": "decode",
                "batch": len(values),
                "decode_events_per_s": round(rates["decode_events"]),
                "decode_us_per_event": round(1e6 / rates["decode_events"], 3),
                "pydantic_events_per_s": round(rates["pydantic_model_validate_json"]),
                "pydantic_us_per_event": round(1e6 / rates["pydantic_model_validate_json"], 3),
                "decode_1pct_rejects_per_s": round(rates["decode_events_1pct_rejects"]),
                "c_decode_us_per_event": round(1e6 / rates["c_decode_alone"], 3),
                "one_by_one_us_per_event": round(1e6 / rates["decode_one_by_one"], 3),
                "decode_vectorise_hash_us_per_event": round(
                    1e6 / rates["decode_vectorise_hash"], 3
                ),
                "with_spec_us_per_event": round(1e6 / rates["decode_events_with_spec"], 3),
                "speedup": round(speedup, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
