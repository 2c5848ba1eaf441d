"""``scorer train``: train a model on Agrawal data or a CSV file, and optionally register it.

Without ``--register`` nothing is written: the command prints the holdout metrics and the
fairness at training, so a candidate can be judged before it enters the registry. With
``--register`` the model becomes the next version of ``--name``; its parent is the version
that was latest before it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from models.datasets import (
    DEFAULT_FUNCTION,
    DEFAULT_LABEL_NOISE,
    Dataset,
    agrawal,
    csv_delimiter,
    from_csv,
)
from models.manifest import ModelManifest
from models.training import MODEL_KINDS, STEPS, TrainedModel, train
from schemas.errors import ConfigError
from streams.settings import load_settings

DEFAULT_ROWS = 20_000
_NAME_PATTERN = re.compile(
    next(m.pattern for m in ModelManifest.model_fields["name"].metadata if hasattr(m, "pattern"))
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model and (with --register) add it to the registry",
        description=(
            "Train a model on the Agrawal loan-application generator (river, no download) or "
            "on a CSV file, print holdout metrics and fairness at training, and with --register "
            "store it as the next version. A CSV file has a header row; --target names the "
            "label column, whose two values are the adverse outcome (--adverse, default 1) and "
            "the other; the model always scores the adverse outcome. Every column that is not "
            "the target or --context is a feature, numeric, boolean (true/false) or "
            "categorical as its values say; a column whose values are all distinct (an id) is "
            "refused unless named with --feature. Category values are trimmed of surrounding "
            "whitespace, in training and in scored events alike."
        ),
    )
    parser.add_argument(
        "--dataset", required=True, metavar="agrawal|PATH.csv", help="'agrawal' or a CSV path"
    )
    parser.add_argument("--model", required=True, choices=MODEL_KINDS, help="model kind")
    parser.add_argument("--name", required=True, help="registered model name")
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        metavar="N",
        help=f"rows to generate (agrawal, default {DEFAULT_ROWS}) or to read at most (CSV)",
    )
    parser.add_argument("--seed", type=int, default=7, metavar="N", help="random seed (7)")
    parser.add_argument(
        "--target", metavar="COL", help="CSV: the label column (two values, see --adverse)"
    )
    parser.add_argument(
        "--adverse",
        metavar="VALUE",
        help="CSV: the target value that is the adverse outcome, e.g. bad, 2 or 0 (default 1; "
        "a target other than 0/1 needs it)",
    )
    parser.add_argument(
        "--delimiter",
        type=csv_delimiter,
        default=",",
        metavar="C",
        help="CSV: the field separator, one character (default ','; '\\t' or tab for tab)",
    )
    parser.add_argument(
        "--feature",
        nargs="+",
        action="extend",
        default=[],
        metavar="COL",
        help="CSV: keep COL as a feature although its values are all distinct (identifier-like)",
    )
    parser.add_argument(
        "--context",
        nargs="+",
        action="extend",
        default=[],
        metavar="COL",
        help="CSV: monitoring-only columns (e.g. protected attributes), never features",
    )
    parser.add_argument(
        "--function",
        type=int,
        default=DEFAULT_FUNCTION,
        metavar="N",
        help=f"agrawal: river classification function 0-9 ({DEFAULT_FUNCTION}; 0-5 use age, "
        "which is not a feature)",
    )
    parser.add_argument(
        "--label-noise",
        type=float,
        default=DEFAULT_LABEL_NOISE,
        metavar="P",
        help=f"agrawal: share of labels flipped ({DEFAULT_LABEL_NOISE})",
    )
    parser.add_argument(
        "--holdout", type=float, default=0.25, metavar="F", help="holdout fraction (0.25)"
    )
    parser.add_argument("--register", action="store_true", help="store the trained model")
    parser.add_argument(
        "--champion",
        action="store_true",
        help="with --register: make the new version champion when NAME has no champion yet "
        "(a first version; later ones go through `scorer models promote` and its gates)",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="with --register: do nothing (exit 0) when NAME already has a champion, so a "
        "bootstrap step (e.g. compose's model-init) can run on every start",
    )
    parser.add_argument(
        "--registry",
        type=Path,
        default=None,
        metavar="DIR",
        help="registry directory (default: SCORER_REGISTRY, else var/registry)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=_train)


def training_data(args: argparse.Namespace) -> Dataset:
    """The rows ``scorer train`` fits on, as its arguments ``args`` ask."""
    if args.rows is not None and args.rows < 1:
        raise ConfigError(f"--rows must be at least 1, got {args.rows}")
    if args.dataset == "agrawal":
        if args.target or args.context or args.adverse or args.feature or args.delimiter != ",":
            raise ConfigError(
                "--target, --adverse, --context, --feature and --delimiter apply to CSV "
                "datasets only"
            )
        if not 0 <= args.function <= 9:
            raise ConfigError(f"--function must be 0-9, got {args.function}")
        if args.function <= 5:
            print(
                f"scorer: warning: Agrawal function {args.function} depends on age, which is "
                "context only (never a feature); the model cannot learn that part",
                file=sys.stderr,
            )
        return agrawal(
            args.rows or DEFAULT_ROWS,
            args.seed,
            args.function,
            label_noise=args.label_noise,
        )
    if not args.target:
        raise ConfigError("--target COL is required with a CSV dataset")
    return from_csv(
        args.dataset,
        args.target,
        args.context,
        max_rows=args.rows,
        delimiter=args.delimiter,
        adverse=args.adverse,
        keep_features=args.feature,
    )


@contextlib.contextmanager
def _progress(console: Console, steps: int) -> Iterator[Any]:
    """A ``(step, detail)`` callback: a rich bar on a terminal, plain lines otherwise."""
    if not console.is_terminal:
        yield lambda step, detail: console.print(f"train: {step}: {detail}", highlight=False)
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[step]:<10}"),
        BarColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=steps, step="")
        started = False

        def report(step: str, detail: str) -> None:
            nonlocal started
            if started:
                bar.advance(task)
            started = True
            bar.update(task, step=step, description=detail)

        yield report


def _train(args: argparse.Namespace) -> int:
    if not _NAME_PATTERN.fullmatch(args.name):
        raise ConfigError(
            f"invalid model name {args.name!r}: letters, digits, '_', '.', '-' (at most 64)"
        )
    if (args.champion or args.if_missing) and not args.register:
        raise ConfigError("--champion and --if-missing apply with --register only")
    console = Console(stderr=True)
    registry = None
    parent = None
    champion: int | None = None
    if args.register:
        from models.registry import Registry  # only a registering run needs the registry

        registry = Registry(args.registry or load_settings().registry)
        versions = registry.versions(args.name)
        parent = versions[-1] if versions else None
        champion = registry.aliases(args.name).get("champion") if versions else None
        if args.if_missing and champion is not None:
            print(
                f"{args.name} already has champion v{champion} in {registry.root}: "
                "nothing trained (--if-missing)"
            )
            return 0
    steps = len(STEPS) if args.register else len(STEPS) - 1
    with _progress(console, steps) as report:
        report("generate", f"dataset {args.dataset}")
        dataset = training_data(args)
        trained = train(
            dataset,
            args.model,
            seed=args.seed,
            holdout_fraction=args.holdout,
            parent_version=parent,
            progress=report,
        )
        manifest = None
        if registry is not None:
            report("register", f"{args.name} in {registry.root}")
            manifest = registry.register(
                trained.estimator,
                name=args.name,
                kind=trained.kind,
                manifest_fields=trained.manifest_fields,
            )
            if args.champion and champion is None:
                from streams.release.promotion import actor_name

                registry.set_alias(
                    args.name,
                    "champion",
                    manifest.version,
                    actor=actor_name(),
                    reason="first champion (scorer train --champion)",
                )
                champion = manifest.version
    if args.json:
        out: dict[str, Any] = dict(trained.summary)
        if manifest is not None:
            out["registered"] = {
                "name": manifest.name,
                "version": manifest.version,
                "sha256": manifest.artifact.sha256,
                "registry": str(registry.root) if registry else None,
                "champion": champion == manifest.version,
            }
        print(json.dumps(out, indent=2))
        return 0
    _print_summary(trained)
    if manifest is not None and registry is not None:
        print(
            f"registered {manifest.name} version {manifest.version} in {registry.root} "
            f"(artifact sha256 {manifest.artifact.sha256})"
        )
        if champion == manifest.version:
            print(f"{manifest.name} version {manifest.version} is champion")
        elif args.champion:
            print(
                f"champion stays v{champion}: promote with "
                f"`scorer models promote {manifest.name} {manifest.version}`"
            )
    else:
        print("not registered: nothing was written (pass --register to store this model)")
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _print_summary(trained: TrainedModel) -> None:
    console = Console(file=sys.stdout)
    s = trained.summary
    console.print(
        f"trained [bold]{s['kind']}[/] on {s['description']}: {s['train_rows']} train rows, "
        f"{s['holdout_rows']} holdout rows, {s['columns']} columns, "
        f"fit in {s['fit_seconds']:.1f} s"
    )
    metrics = Table(title="holdout metrics", title_justify="left")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for name, value in s["metrics"].items():
        if not name.endswith("_rows"):
            metrics.add_row(name, _fmt(value))
    console.print(metrics)
    for attribute, report in s["fairness"]["attributes"].items():
        table = Table(
            title=(
                f"fairness by {attribute} (holdout; selected = approve): "
                f"disparate impact {_fmt(report['disparate_impact_ratio'])}, "
                f"parity gap {_fmt(report['demographic_parity_difference'])}, "
                f"tpr gap {_fmt(report['tpr_gap'])}"
            ),
            title_justify="left",
        )
        for column in ("group", "count", "selection_rate", "tpr", "fpr"):
            table.add_column(column, justify="left" if column == "group" else "right")
        for group, rates in report["groups"].items():
            table.add_row(
                group,
                str(rates["count"]),
                _fmt(rates["selection_rate"]),
                _fmt(rates["tpr"]),
                _fmt(rates["fpr"]),
            )
        console.print(table)
