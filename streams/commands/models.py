"""``scorer models``: register, import, list, inspect, verify, promote, roll back and audit
registered models.

``register`` and ``import`` bring a model trained elsewhere (a scikit-learn pipeline saved
with skops, a LightGBM or XGBoost booster, or a model in MLflow) into the registry through
:mod:`models.external`. Promotion and rollback are the release workflow of
:mod:`streams.release.promotion`; this module parses their arguments and prints their
outcome.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from models.datasets import csv_delimiter
from models.manifest import ModelManifest
from models.registry import ALIASES, AliasMove, Registry
from schemas.errors import ArtifactIntegrityError, PromotionRefused, RegistryError, UnservableModel
from streams.release.promotion import Promotion, actor_name, promote, rollback
from streams.settings import Settings, load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="registry directory (default: SCORER_REGISTRY, else var/registry)",
    )
    parser = subparsers.add_parser(
        "models",
        parents=[common],
        help="list, show, verify, promote and roll back registered models",
        description="Inspect the model registry and move the champion and challenger aliases.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="PATH.csv",
        help="rows the model was fit or validated on, with a header: the model's input "
        "columns, the target and any context columns. They give the metrics and fairness "
        "recorded in the manifest, the drift reference and the explainer's background",
    )
    data.add_argument("--target", required=True, metavar="COL", help="the target column")
    data.add_argument(
        "--adverse",
        default=None,
        metavar="VALUE",
        help="the target value that is the adverse outcome (default 1; a target that is "
        "not 0/1 needs it)",
    )
    data.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="COL",
        help="a monitoring-only column (e.g. a protected attribute), never a feature; "
        "fairness is computed over it; repeatable",
    )
    data.add_argument(
        "--delimiter",
        type=csv_delimiter,
        default=",",
        metavar="C",
        help="field separator of the data file (default ','; '\\t' or 'tab' for tabs)",
    )
    data.add_argument("--json", action="store_true", help="print the new manifest as JSON")

    add = actions.add_parser(
        "register",
        parents=[common, data],
        help="register a model trained elsewhere (skops, LightGBM, XGBoost file)",
        description=(
            "Register a model trained elsewhere as the next version of NAME. Events then "
            "carry the data file's own columns (target and context excluded): numbers as "
            "numbers, categories as their text (compared trimmed, as training trims them). "
            "The model is stored in a format that loads without pickle, loaded back and "
            "refused unless its scores on rows of --data equal the library's own "
            "predict_proba (<= 1e-9) and its explanations add up (<= 1e-6). Nothing is "
            "written when it is refused. Promote it with `scorer models promote`."
        ),
    )
    add.add_argument("name")
    add.add_argument(
        "--artifact",
        type=Path,
        required=True,
        metavar="PATH",
        help="the model file: a scikit-learn estimator or pipeline saved with skops "
        "(.skops), a LightGBM booster's text model (.txt), or an XGBoost booster (.json, "
        ".ubj); pickle files are refused",
    )
    add.add_argument(
        "--format",
        choices=("skops", "lightgbm", "xgboost"),
        default=None,
        help="the artifact's format (default: from its file name)",
    )
    add.set_defaults(func=_register)

    imported = actions.add_parser(
        "import",
        parents=[common, data],
        help="import a model from MLflow (scikit-learn, LightGBM, XGBoost flavors)",
        description=(
            "Take a model from an MLflow tracking server or registry through MLflow's own "
            "API and register it as the next version of NAME, as `register` does; the "
            "manifest's lineage records the MLflow URI, run id and model version. A flavor "
            "stored as a pickle (MLflow's scikit-learn default) is read only with "
            "--trust-pickle naming its sha256; it is then kept as skops, so serving never "
            "unpickles. Needs the mlflow extra."
        ),
    )
    imported.add_argument("name")
    imported.add_argument(
        "--mlflow",
        required=True,
        metavar="URI",
        help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/PATH",
    )
    imported.add_argument(
        "--tracking-uri",
        default=None,
        metavar="URI",
        help="MLflow tracking server or store (default: MLFLOW_TRACKING_URI)",
    )
    imported.add_argument(
        "--trust-pickle",
        default=None,
        metavar="SHA256",
        help="the sha256 of the pickled model file you vouch for (the refusal prints it)",
    )
    imported.set_defaults(func=_import)

    listing = actions.add_parser("list", parents=[common], help="models, versions and aliases")
    listing.set_defaults(func=_list)

    show = actions.add_parser("show", parents=[common], help="one model's versions and manifest")
    show.add_argument("name")
    show.add_argument(
        "--version",
        default=None,
        metavar="N",
        help="version number or alias to describe (default: champion, else latest)",
    )
    show.add_argument("--json", action="store_true", help="print the manifest as JSON")
    show.set_defaults(func=_show)

    verify = actions.add_parser(
        "verify",
        parents=[common],
        help="check manifests, artifact sha256, safe loading, scores and explanations",
        description=(
            "Check that each manifest parses, that the artifact's size and sha256 match it, "
            "that the artifact loads under the trusted type lists (check load), that it builds "
            "as serving builds it (build), that its scores on rows drawn from the reference "
            "statistics equal the library's own predict_proba (score) and that its "
            "explanations add up to its output (additivity). Registration runs the same "
            "checks. Without VERSION every version of the model is checked."
        ),
    )
    verify.add_argument("name")
    verify.add_argument("version", nargs="?", type=int, default=None)
    verify.set_defaults(func=_verify)

    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument(
        "--actor",
        default=None,
        metavar="WHO",
        help="who makes the change, kept in history and the ModelEvent "
        "(default: SCORER_ACTOR, else user@host)",
    )
    promote = actions.add_parser(
        "promote",
        parents=[common, actor],
        help="point an alias (champion by default) at a version, after the promotion gates",
        description=(
            "Move an alias to a version. Before champion moves, the promotion gates run and "
            "each is printed with its numbers: feature-spec compatibility with what producers "
            "send (an incompatible spec is refused before any traffic is read), explanation "
            "additivity on a sample, holdout metrics against the champion's, the "
            "disparate-impact floor, and, when recorded traffic exists, the replay flip rate. "
            "Thresholds come from promotion-policy.yaml in the model's registry folder "
            "(written with defaults when absent). A failed gate refuses the promotion (exit "
            "1, alias untouched, refusal recorded) unless --force --reason TEXT is given. "
            "Every outcome is kept in the alias history and published as a ModelEvent. "
            "The challenger alias is not gated: it only scores in shadow."
        ),
    )
    promote.add_argument("name")
    promote.add_argument("version", help="version number, or 'challenger' or 'latest'")
    promote.add_argument("--alias", choices=ALIASES, default="champion")
    promote.add_argument("--reason", default=None, help="why; kept in the alias history")
    promote.add_argument(
        "--force",
        action="store_true",
        help="promote even when a gate fails; requires --reason, recorded as forced",
    )
    promote.add_argument(
        "--skip-replay",
        action="store_true",
        help="do not read recorded traffic (its gates are reported as skipped), e.g. when "
        "the broker holds no traffic for this model yet",
    )
    promote.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds allowed for reading recorded traffic (120)",
    )
    promote.set_defaults(func=_promote)

    rollback = actions.add_parser(
        "rollback",
        parents=[common, actor],
        help="move champion back to the version before its latest promotion",
    )
    rollback.add_argument("name")
    rollback.add_argument("--reason", default=None, help="why; kept in the alias history")
    rollback.set_defaults(func=_rollback)

    history = actions.add_parser(
        "history",
        parents=[common],
        help="the timeline of promotions, rollbacks and refusals, with their gates",
        description="Every alias move and refused promotion of a model, oldest first: who, "
        "when, why, and the promotion gates with their outcome.",
    )
    history.add_argument("name")
    history.add_argument("--json", action="store_true", help="print the history as JSON")
    history.set_defaults(func=_history)


def _context(args: argparse.Namespace) -> tuple[Settings, Registry]:
    settings = load_settings()
    root = getattr(args, "registry", None) or settings.registry
    return settings, Registry(root)


# --- register and import ---------------------------------------------------------------------


def _register(args: argparse.Namespace) -> int:
    from models.external.sources import read_model_file

    _, registry = _context(args)
    source = read_model_file(args.artifact, args.format)
    return _register_model(args, registry, source.model, source.lineage)


def _import(args: argparse.Namespace) -> int:
    import tempfile

    from models.external.mlflow_source import fetch_mlflow_model

    _, registry = _context(args)
    with tempfile.TemporaryDirectory(prefix="scorer-mlflow-") as scratch:
        fetched = fetch_mlflow_model(
            args.mlflow,
            tracking_uri=args.tracking_uri,
            trust_pickle=args.trust_pickle,
            workdir=Path(scratch),
        )
        return _register_model(args, registry, fetched.model, fetched.lineage)


def _register_model(
    args: argparse.Namespace, registry: Registry, model: Any, lineage: dict[str, Any]
) -> int:
    from models.external.register import read_data, register_dataset

    dataset = read_data(
        args.data,
        model=model,
        target=args.target,
        adverse=args.adverse,
        context=args.context,
        delimiter=args.delimiter,
    )
    manifest = register_dataset(registry, args.name, model, dataset, lineage=lineage)
    if args.json:
        print(manifest.model_dump_json(indent=2))
        return 0
    metrics = manifest.metrics
    print(
        f"registered {manifest.name} v{manifest.version} ({manifest.kind}, "
        f"{manifest.explainer.get('method')} explanations in "
        f"{manifest.explainer.get('output_space')}) sha256 {manifest.artifact.sha256}"
    )
    print(f"  features: {', '.join(manifest.feature_spec.names)}")
    print(
        f"  on {manifest.training.params.get('evaluation')}: ROC AUC {metrics['roc_auc']:.3f}, "
        f"accuracy {metrics['accuracy']:.3f}, adverse rate {metrics['base_rate']:.3f}"
    )
    print(f"  promote with: scorer models promote {manifest.name} {manifest.version}")
    return 0


# --- list and show ---------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    _, registry = _context(args)
    names = registry.names()
    if not names:
        print(f"no models in {registry.root}")
        return 0
    rows: list[tuple[str, ...]] = [
        ("MODEL", "VERSIONS", "LATEST", "CHAMPION", "CHALLENGER", "KIND")
    ]
    for name in names:
        versions = registry.versions(name)
        aliases = registry.aliases(name)
        kind: str
        try:
            kind = registry.manifest(name, versions[-1]).kind
        except ArtifactIntegrityError:
            kind = "(invalid manifest)"
        rows.append(
            (
                name,
                str(len(versions)),
                str(versions[-1]),
                _version_text(aliases.get("champion")),
                _version_text(aliases.get("challenger")),
                kind,
            )
        )
    _print_table(rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    _, registry = _context(args)
    version = registry.resolve(args.name, args.version)
    manifest = registry.manifest(args.name, version)
    if args.json:
        print(manifest.model_dump_json(indent=2))
        return 0
    versions = registry.versions(args.name)
    aliases = registry.aliases(args.name)
    labels = {v: [a for a, n in sorted(aliases.items()) if n == v] for v in versions}
    print(f"model {args.name}  ({registry.root})")
    print(f"versions: {', '.join(_labelled(v, labels[v]) for v in versions)}")
    print(f"aliases:  {', '.join(f'{a} -> v{v}' for a, v in sorted(aliases.items())) or 'none'}")
    print()
    print(f"version {_labelled(version, labels.get(version, []))}")
    for key, value in _describe(manifest):
        print(f"  {key:<12} {value}")
    return 0


def _describe(m: ModelManifest) -> list[tuple[str, str]]:
    t = m.training
    spec = m.feature_spec
    with_stats, without_stats = _reference_coverage(m)
    lines = [
        ("kind", m.kind),
        ("created_at", m.created_at.isoformat()),
        ("artifact", f"{m.artifact.file} ({m.artifact.format}, {m.artifact.size_bytes} bytes)"),
        ("sha256", m.artifact.sha256),
        (
            ("evaluated", str(t.params["evaluation"]))
            if m.lineage and "evaluation" in t.params
            else (
                "training",
                f"dataset={t.dataset} rows={t.rows} holdout={t.holdout_rows} seed={t.seed}",
            )
        ),
        ("data_sha256", t.data_sha256),
        ("code", t.code_version),
        ("parent", _version_text(t.parent_version)),
        ("params", _compact(t.params)),
        ("features", f"{len(spec.features)} ({', '.join(spec.names)})"),
        ("context", ", ".join(m.context_attributes) or "none"),
        ("policy", f"review_at={m.policy.review_at:g} decline_at={m.policy.decline_at:g}"),
        ("metrics", ", ".join(f"{k}={v:.4g}" for k, v in sorted(m.metrics.items())) or "none"),
        ("fairness", _compact(m.fairness)),
        (
            "reference",
            f"stats for {len(with_stats)} of {len(spec.features)} features"
            + (f" ({', '.join(with_stats)})" if with_stats else "")
            + (f"; none for {', '.join(without_stats)}" if without_stats else ""),
        ),
    ]
    extra = sorted(k for k in m.reference if k != "features" and k not in spec.names)
    if extra:
        lines.append(("", f"also: {', '.join(extra)}"))
    if m.explainer:
        method = m.explainer.get("method")
        detail = f"{method} in {m.explainer.get('output_space', 'log_odds')}; " if method else ""
        lines.append(("explainer", detail + ", ".join(sorted(m.explainer))))
    if m.lineage:
        lines.append(("lineage", _compact(m.lineage)))
    return lines


def _reference_coverage(m: ModelManifest) -> tuple[list[str], list[str]]:
    """Features with and without reference statistics (under ``features`` or at top level)."""
    nested = m.reference.get("features")
    stats = nested if isinstance(nested, dict) else m.reference
    names = m.feature_spec.names
    return [n for n in names if stats.get(n)], [n for n in names if not stats.get(n)]


# --- verify ----------------------------------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    _, registry = _context(args)
    if args.version is not None:
        versions = [args.version]
    else:
        versions = registry.versions(args.name) or [registry.resolve(args.name, None)]
    failures: list[RegistryError] = []
    for version in versions:
        try:
            manifest = registry.verify(args.name, version)
        except (ArtifactIntegrityError, UnservableModel) as exc:
            failures.append(exc)
            continue
        print(f"ok {args.name} v{version} sha256 {manifest.artifact.sha256}")
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise RegistryError("; ".join(str(f) for f in failures))
    return 0


# --- promote and rollback --------------------------------------------------------------------


def _promote(args: argparse.Namespace) -> int:
    settings, registry = _context(args)
    version = registry.resolve(args.name, args.version)
    outcome = promote(
        settings, registry, args.name, version, alias=args.alias, actor=actor_name(args.actor),
        reason=args.reason, force=args.force, replay_traffic=not args.skip_replay,
        timeout=args.timeout,
    )  # fmt: skip
    if outcome.policy_written:
        print(f"wrote the default promotion policy to {outcome.policy_file}")
    if outcome.policy is not None:
        print(
            f"gates for {args.name} v{version} (policy v{outcome.policy.version}, "
            f"{outcome.policy_file}):"
        )
        for result in outcome.gates:
            print(f"  {result.status.upper():<5} {result.gate:<21} {result.detail}")
    if outcome.refused:
        _print_announcement(settings, outcome, "refused")
        raise PromotionRefused(
            f"{args.name} v{version} not promoted to {args.alias}: "
            f"gate(s) failed: {', '.join(outcome.failed)}; the alias stays "
            f"{_version_text(outcome.move.previous_version)} "
            "(use --force --reason TEXT to override)"
        )
    if outcome.failed:
        print(f"forced past failed gate(s) {', '.join(outcome.failed)}: {args.reason}")
    _print_move(outcome.move)
    _print_announcement(settings, outcome, "promoted")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    settings, registry = _context(args)
    outcome = rollback(settings, registry, args.name, actor=actor_name(args.actor),
                       reason=args.reason)  # fmt: skip
    _print_move(outcome.move)
    _print_announcement(settings, outcome, "rolled_back")
    return 0


# --- history ---------------------------------------------------------------------------------


def _history(args: argparse.Namespace) -> int:
    _, registry = _context(args)
    entries = registry.history(args.name)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"no alias moves recorded for {args.name}")
        return 0
    rows: list[tuple[str, ...]] = [("AT", "ACTION", "ALIAS", "VERSION", "ACTOR", "GATES", "REASON")]
    for entry in entries:
        action = entry.get("action", "promote")
        if entry.get("forced"):
            action += " (forced)"
        rows.append(
            (
                str(entry.get("at", ""))[:19].replace("T", " "),
                action,
                str(entry.get("alias", "")),
                f"{_version_text(entry.get('previous_version'))} -> "
                f"{_version_text(entry.get('version'))}",
                str(entry.get("actor", "")),
                _gate_summary(entry.get("gates")),
                str(entry.get("reason") or ""),
            )
        )
    _print_table(rows)
    return 0


def _gate_summary(gates: list[dict[str, Any]] | None) -> str:
    if not gates:
        return "-"
    counts = Counter(g.get("status") for g in gates)
    text = ", ".join(f"{counts[s]} {s}" for s in ("pass", "fail", "skip") if counts[s])
    failed = [g["gate"] for g in gates if g.get("status") == "fail"]
    return text + (f" ({', '.join(failed)})" if failed else "")


def _print_move(move: AliasMove) -> None:
    if move.version == move.previous_version:
        print(f"{move.name}: {move.alias} already v{move.version}; announcing it again")
    else:
        print(
            f"{move.name}: {move.alias} -> v{move.version} "
            f"(was {_version_text(move.previous_version)})"
        )


def _print_announcement(settings: Settings, outcome: Promotion, event_type: str) -> None:
    if outcome.announcement is None:
        print(f"published ModelEvent ({event_type}) to {settings.topic_model_events}")
    elif outcome.refused:
        print(f"refusal recorded; ModelEvent not published: {outcome.announcement}",
              file=sys.stderr)  # fmt: skip
    else:
        print(f"alias moved; ModelEvent not published: {outcome.announcement}", file=sys.stderr)


# --- text layout -----------------------------------------------------------------------------


def _version_text(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _labelled(version: int, labels: list[str]) -> str:
    return f"v{version}" + (f" ({', '.join(labels)})" if labels else "")


def _compact(value: Any, limit: int = 200) -> str:
    if not value:
        return "none"
    text = json.dumps(value, sort_keys=True, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
