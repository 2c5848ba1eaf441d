"""``scorer models``: list, inspect, verify, promote and roll back registered models.

Promotions and rollbacks move the alias in the registry first, then announce the move as a
ModelEvent on the model-events topic; when the broker cannot be reached the move stands and
the command says the event was not published.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from models.manifest import ModelManifest
from models.registry import ALIASES, AliasMove, Registry
from schemas.contracts import ModelEvent
from schemas.errors import ArtifactIntegrityError
from streams.model_events import publish_model_event
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
        help="check manifests, artifact sha256 and safe loading",
        description=(
            "Check that each manifest parses, that the artifact's size and sha256 match it, "
            "and that the artifact loads under the trusted type lists. Without VERSION every "
            "version of the model is checked."
        ),
    )
    verify.add_argument("name")
    verify.add_argument("version", nargs="?", type=int, default=None)
    verify.set_defaults(func=_verify)

    promote = actions.add_parser(
        "promote",
        parents=[common],
        help="point an alias (champion by default) at a version",
    )
    promote.add_argument("name")
    promote.add_argument("version", help="version number, or 'challenger' or 'latest'")
    promote.add_argument("--alias", choices=ALIASES, default="champion")
    promote.add_argument("--reason", default=None, help="why; kept in the alias history")
    promote.set_defaults(func=_promote)

    rollback = actions.add_parser(
        "rollback",
        parents=[common],
        help="move champion back to the version before its latest promotion",
    )
    rollback.add_argument("name")
    rollback.add_argument("--reason", default=None, help="why; kept in the alias history")
    rollback.set_defaults(func=_rollback)


def _context(args: argparse.Namespace) -> tuple[Settings, Registry]:
    settings = load_settings()
    root = getattr(args, "registry", None) or settings.registry
    return settings, Registry(root)


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
        ("training", f"dataset={t.dataset} rows={t.rows} holdout={t.holdout_rows} seed={t.seed}"),
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
        lines.append(("explainer", ", ".join(sorted(m.explainer))))
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
    failures: list[str] = []
    for version in versions:
        try:
            manifest = registry.verify(args.name, version)
        except ArtifactIntegrityError as exc:
            failures.append(str(exc))
            continue
        print(f"ok {args.name} v{version} sha256 {manifest.artifact.sha256}")
    if failures:
        raise ArtifactIntegrityError("; ".join(failures))
    return 0


# --- promote and rollback --------------------------------------------------------------------


def _promote(args: argparse.Namespace) -> int:
    settings, registry = _context(args)
    version = registry.resolve(args.name, args.version)
    actor = _actor()
    move = registry.set_alias(args.name, args.alias, version, actor=actor, reason=args.reason)
    _announce(settings, registry, move, "promoted", actor, args.reason)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    settings, registry = _context(args)
    actor = _actor()
    move = registry.rollback(args.name, actor=actor, reason=args.reason)
    _announce(settings, registry, move, "rolled_back", actor, args.reason)
    return 0


def _announce(
    settings: Settings,
    registry: Registry,
    move: AliasMove,
    event_type: str,
    actor: str,
    reason: str | None,
) -> None:
    if move.version == move.previous_version:
        print(f"{move.name}: {move.alias} already v{move.version}; announcing it again")
    else:
        print(
            f"{move.name}: {move.alias} -> v{move.version} "
            f"(was {_version_text(move.previous_version)})"
        )
    sha256 = registry.manifest(move.name, move.version).artifact.sha256 if move.version else None
    event = ModelEvent.model_validate(
        {
            "event_type": event_type,
            "model_name": move.name,
            "version": move.version,
            "alias": move.alias,
            "previous_version": move.previous_version,
            "sha256": sha256,
            "actor": actor,
            "reason": reason,
            "occurred_at": move.at,
        }
    )
    problem = publish_model_event(settings, event)
    if problem is None:
        print(f"published ModelEvent to {settings.topic_model_events}")
    else:
        print(f"alias moved; ModelEvent not published: {problem}", file=sys.stderr)


def _actor() -> str:
    """Who moves the alias: SCORER_ACTOR, else user@host."""
    configured = os.environ.get("SCORER_ACTOR", "").strip()
    if configured:
        return configured[:128]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"[:128]


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
