"""The model registry: a directory store of immutable versions and movable aliases.

Layout under the root::

    <root>/<name>/<version>/artifact.skops | artifact.pkl   the model (see models.artifacts)
    <root>/<name>/<version>/manifest.json                   its ModelManifest
    <root>/<name>/aliases.json                              champion / challenger and history
    <root>/<name>/.lock                                     serialises alias moves

A version is written into a temporary folder and renamed into place, so it appears whole or
not at all; its files are then made read-only. Before the rename the artifact is loaded back
from the staged bytes and checked as serving would use it (:mod:`models.servable`): a version
that would not build, score like its library or explain additively is refused, and nothing
of it is left behind. Aliases move under an exclusive lock by
replacing ``aliases.json`` atomically, so readers never need the lock and never see a
half-written file. Every move is kept in the alias history, which is what ``rollback`` uses.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, get_args

from pydantic import ValidationError

from models.artifacts import load_artifact, save_artifact
from models.manifest import MANIFEST_FILE, ModelKind, ModelManifest
from models.servable import Servability, check_servable
from schemas.errors import ArtifactIntegrityError, ModelNotFound, RegistryError, UnservableModel

ALIASES: Final = ("champion", "challenger")
ALIASES_FILE: Final = "aliases.json"
LOCK_FILE: Final = ".lock"
FILLED_BY_REGISTRY: Final = frozenset({"name", "version", "kind", "artifact", "created_at"})
"""Manifest fields the registry sets itself; ``register`` refuses them in ``manifest_fields``."""

_NAME_PATTERN: Final = re.compile(
    next(m.pattern for m in ModelManifest.model_fields["name"].metadata if hasattr(m, "pattern"))
)
_MAX_REGISTER_ATTEMPTS: Final = 1000


@dataclass(frozen=True)
class LoadedModel:
    """A deserialised model and the manifest it was checked against."""

    manifest: ModelManifest
    estimator: Any


@dataclass(frozen=True)
class AliasMove:
    """One change of an alias; ``version`` is None when the alias was cleared."""

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    at: datetime


class Registry:
    """A registry rooted at a directory (created when something is first written)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # --- writing versions ----------------------------------------------------------------

    def register(
        self,
        model: Any,
        *,
        name: str,
        kind: str,
        manifest_fields: dict[str, Any],
        sample_rows: Sequence[Mapping[str, Any]] | None = None,
    ) -> ModelManifest:
        """Store ``model`` as the next version of ``name`` and return its manifest.

        The stored bytes are loaded back and checked before the version becomes visible
        (see :mod:`models.servable`), on ``sample_rows`` (feature dicts) when given, else on
        rows drawn from the manifest's reference statistics. A version that fails raises
        UnservableModel naming the check, and leaves no folder and no alias change.
        """
        model_dir = self._model_dir(name)
        if kind not in get_args(ModelKind):
            raise RegistryError(
                f"unknown model kind {kind!r}; expected one of {get_args(ModelKind)}"
            )
        clash = sorted(FILLED_BY_REGISTRY & manifest_fields.keys())
        if clash:
            raise RegistryError(f"manifest_fields must not set {clash}: the registry fills them")
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = model_dir / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            artifact = save_artifact(model, kind, staging)
            os.chmod(staging / artifact.file, 0o444)
            created_at = datetime.now(UTC)
            version = self._latest_or_zero(name) + 1
            fields = {"name": name, "kind": kind, "artifact": artifact, "created_at": created_at}
            manifest = self._build_manifest(manifest_fields, version=version, **fields)
            self._check_staged(staging, manifest, sample_rows)
            for _ in range(_MAX_REGISTER_ATTEMPTS):
                manifest = self._build_manifest(manifest_fields, version=version, **fields)
                if self._claim(staging, manifest):
                    return manifest
                version = max(version, self._latest_or_zero(name)) + 1
            raise RegistryError(f"could not claim a version number for {name!r}")
        except OSError as exc:
            raise RegistryError(f"cannot register {name!r} in {self.root}: {exc}") from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _claim(self, staging: Path, manifest: ModelManifest) -> bool:
        """Rename ``staging`` to the manifest's version folder; False if that is taken."""
        _write_read_only(staging / MANIFEST_FILE, manifest.model_dump_json(indent=2))
        model_dir = staging.parent
        target = model_dir / str(manifest.version)
        if target.exists():
            return False
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            return False
        os.chmod(target, 0o555)
        _fsync_dir(model_dir)
        return True

    @staticmethod
    def _check_staged(
        staging: Path, manifest: ModelManifest, rows: Sequence[Mapping[str, Any]] | None
    ) -> Servability:
        """Load the staged artifact from its bytes, as serving loads it, and check it."""
        label = f"refused to register {manifest.name!r}"
        try:
            estimator = load_artifact(
                staging / manifest.artifact.file, manifest.artifact, manifest.kind
            )
        except ArtifactIntegrityError as exc:
            raise UnservableModel(f"{label}: check load failed: {exc}", check="load") from exc
        return check_servable(LoadedModel(manifest, estimator), label, rows)

    @staticmethod
    def _build_manifest(fields: dict[str, Any], **filled: Any) -> ModelManifest:
        try:
            return ModelManifest.model_validate({**fields, **filled})
        except ValidationError as exc:
            raise RegistryError(f"invalid manifest for {filled['name']!r}: {exc}") from exc

    # --- reading versions ----------------------------------------------------------------

    def names(self) -> list[str]:
        """Models with at least one version, sorted."""
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return []
        return sorted(
            e.name
            for e in entries
            if e.is_dir() and _NAME_PATTERN.fullmatch(e.name) and _version_dirs(e)
        )

    def versions(self, name: str) -> list[int]:
        """The versions of ``name``, ascending; empty when the model does not exist."""
        return _version_dirs(self._model_dir(name))

    def manifest(self, name: str, version: int | None = None) -> ModelManifest:
        """The manifest of ``version`` (None: the latest), checked against its folder."""
        number = self._existing_version(name, version)
        path = self._model_dir(name) / str(number) / MANIFEST_FILE
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactIntegrityError(f"{name} v{number}: manifest missing: {path}") from None
        except OSError as exc:
            raise ArtifactIntegrityError(f"{name} v{number}: cannot read {path}: {exc}") from exc
        try:
            manifest = ModelManifest.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "manifest"
            raise ArtifactIntegrityError(
                f"{name} v{number}: invalid manifest {path}: {where}: {first['msg']}"
            ) from exc
        if manifest.name != name or manifest.version != number:
            raise ArtifactIntegrityError(
                f"{name} v{number}: manifest {path} describes {manifest.name} v{manifest.version}"
            )
        return manifest

    def load(self, name: str, version: int | str | None = None) -> LoadedModel:
        """Load a version (a number, an alias, or None for champion-or-latest), hash-checked."""
        manifest = self.manifest(name, self.resolve(name, version))
        return LoadedModel(manifest=manifest, estimator=self._load_artifact(manifest))

    def verify(self, name: str, version: int | None = None) -> ModelManifest:
        """Check a version (None: the latest) end to end, as registration checked it.

        The manifest must parse and match its folder, the artifact's size and sha256 must
        match the manifest, and the artifact must deserialise under the trusted type lists
        (else ArtifactIntegrityError); then it must build, score like its library and explain
        additively on rows from its reference statistics (else UnservableModel naming the
        check; see :mod:`models.servable`).
        """
        return self.check(name, version)[0]

    def check(self, name: str, version: int | None = None) -> tuple[ModelManifest, Servability]:
        """:meth:`verify`, also returning what the servability checks measured."""
        manifest = self.manifest(name, version)
        estimator = self._load_artifact(manifest)
        label = f"{manifest.name} v{manifest.version}"
        return manifest, check_servable(LoadedModel(manifest, estimator), label)

    def _load_artifact(self, manifest: ModelManifest) -> Any:
        file = manifest.artifact.file
        if Path(file).name != file or file in ("", ".", ".."):
            raise ArtifactIntegrityError(
                f"{manifest.name} v{manifest.version}: artifact file {file!r} is not a plain name"
            )
        path = self._model_dir(manifest.name) / str(manifest.version) / file
        try:
            return load_artifact(path, manifest.artifact, manifest.kind)
        except ArtifactIntegrityError as exc:
            raise ArtifactIntegrityError(f"{manifest.name} v{manifest.version}: {exc}") from exc

    # --- aliases -------------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, int]:
        """The aliases currently set for ``name`` (e.g. ``{"champion": 3}``)."""
        self._require_model(name)
        return dict(self._read_aliases(name)["aliases"])

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every alias move of ``name``, and every refused promotion, oldest first.

        Each entry has ``alias``, ``version``, ``previous_version``, ``action`` (promote,
        rollback, clear or refused), ``actor``, ``reason`` and ``at``; gated promotions and
        refusals also carry ``gates`` and ``forced``.
        """
        self._require_model(name)
        return list(self._read_aliases(name)["history"])

    def resolve(self, name: str, ref: str | int | None = None) -> int:
        """The version number ``ref`` names.

        None or ``"champion"``: the champion, or the latest version when there is none;
        ``"challenger"``: the challenger; ``"latest"``: the latest; a number (or its text):
        that version, which must exist.
        """
        versions = self._require_model(name)
        if isinstance(ref, str) and ref.strip().isdigit():
            ref = int(ref.strip())
        if ref is None or ref == "champion":
            return self.aliases(name).get("champion", versions[-1])
        if ref == "latest":
            return versions[-1]
        if ref == "challenger":
            aliases = self.aliases(name)
            if "challenger" not in aliases:
                raise ModelNotFound(
                    f"model {name!r} has no challenger; aliases: {_describe(aliases)}; "
                    f"versions: {_listing(versions)}"
                )
            return aliases["challenger"]
        if isinstance(ref, int) and not isinstance(ref, bool):
            return self._existing_version(name, ref)
        raise ModelNotFound(
            f"cannot resolve {ref!r} for model {name!r}: use a version number, 'champion', "
            f"'challenger' or 'latest' (versions: {_listing(versions)})"
        )

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str | None = None,
        gates: list[dict[str, Any]] | None = None,
        forced: bool = False,
    ) -> AliasMove:
        """Point ``alias`` at ``version``, which must exist and verify; recorded in history.

        ``gates`` (the promotion gates evaluated) and ``forced`` (promoted past a failed
        gate) are kept in the history entry.
        """
        self._check_alias(alias)
        self.verify(name, version)
        audit = {"gates": gates, "forced": forced} if gates is not None or forced else {}
        return self._move(
            name, alias, version, actor=actor, reason=reason, action="promote", audit=audit
        )

    def record_refusal(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str | None,
        gates: list[dict[str, Any]],
    ) -> datetime:
        """Keep a refused promotion in the history; the alias does not move."""
        self._check_alias(alias)
        self._require_model(name)
        with self._locked(name):
            state = self._read_aliases(name)
            at = datetime.now(UTC)
            state["history"].append(
                {
                    "alias": alias,
                    "version": version,
                    "previous_version": state["aliases"].get(alias),
                    "action": "refused",
                    "actor": actor,
                    "reason": reason,
                    "at": at.isoformat(),
                    "gates": gates,
                }
            )
            self._write_aliases(name, state)
        return at

    def clear_alias(
        self, name: str, alias: str, *, actor: str = "unknown", reason: str | None = None
    ) -> AliasMove:
        """Remove ``alias`` (a no-op move when it is not set)."""
        self._check_alias(alias)
        self._require_model(name)
        return self._move(name, alias, None, actor=actor, reason=reason, action="clear")

    def rollback(self, name: str, *, actor: str, reason: str | None = None) -> AliasMove:
        """Move champion back to the version it had before its latest promotion.

        Promotions and rollbacks form a stack: rolling back twice after three promotions
        returns to the first champion. The target version must still verify.
        """
        self._require_model(name)
        with self._locked(name):
            state = self._read_aliases(name)
            current = state["aliases"].get("champion")
            stack = _champion_stack(state["history"])
            if current is None or len(stack) < 2 or stack[-1] != current:
                raise RegistryError(
                    f"cannot roll back {name!r}: champion is "
                    f"{'not set' if current is None else f'v{current}'} and history holds no "
                    "earlier champion to return to"
                )
            target = stack[-2]
            self.verify(name, target)
            return self._write_move(
                name, state, "champion", target, actor=actor, reason=reason, action="rollback"
            )

    def _move(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        actor: str,
        reason: str | None,
        action: str,
        audit: dict[str, Any] | None = None,
    ) -> AliasMove:
        with self._locked(name):
            state = self._read_aliases(name)
            previous = state["aliases"].get(alias)
            if previous == version:
                return AliasMove(name, alias, version, previous, datetime.now(UTC))
            return self._write_move(
                name, state, alias, version, actor=actor, reason=reason, action=action, audit=audit
            )

    def _write_move(
        self,
        name: str,
        state: dict[str, Any],
        alias: str,
        version: int | None,
        *,
        actor: str,
        reason: str | None,
        action: str,
        audit: dict[str, Any] | None = None,
    ) -> AliasMove:
        at = datetime.now(UTC)
        previous = state["aliases"].get(alias)
        if version is None:
            state["aliases"].pop(alias, None)
        else:
            state["aliases"][alias] = version
        state["history"].append(
            {
                "alias": alias,
                "version": version,
                "previous_version": previous,
                "action": action,
                "actor": actor,
                "reason": reason,
                "at": at.isoformat(),
                **(audit or {}),
            }
        )
        self._write_aliases(name, state)
        return AliasMove(name, alias, version, previous, at)

    def _read_aliases(self, name: str) -> dict[str, Any]:
        path = self._model_dir(name) / ALIASES_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {"aliases": {}, "history": []}
        except OSError as exc:
            raise RegistryError(f"cannot read {path}: {exc}") from exc
        try:
            state = json.loads(raw)
            aliases = {str(k): int(v) for k, v in state["aliases"].items()}
            history = list(state["history"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RegistryError(f"{path} is not a valid aliases file: {exc}") from exc
        return {"aliases": aliases, "history": history}

    def _write_aliases(self, name: str, state: dict[str, Any]) -> None:
        model_dir = self._model_dir(name)
        tmp = model_dir / f"{ALIASES_FILE}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, model_dir / ALIASES_FILE)
        _fsync_dir(model_dir)

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        fd = os.open(self._model_dir(name) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @staticmethod
    def _check_alias(alias: str) -> None:
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; expected one of {list(ALIASES)}")

    # --- names and versions --------------------------------------------------------------

    def _model_dir(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
            raise RegistryError(
                f"invalid model name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        return self.root / name

    def _require_model(self, name: str) -> list[int]:
        versions = self.versions(name)
        if not versions:
            known = self.names()
            raise ModelNotFound(
                f"no model {name!r} in registry {self.root}; "
                f"models: {', '.join(known) if known else 'none'}"
            )
        return versions

    def _existing_version(self, name: str, version: int | None) -> int:
        versions = self._require_model(name)
        if version is None:
            return versions[-1]
        if version not in versions:
            raise ModelNotFound(
                f"model {name!r} has no version {version}; versions: {_listing(versions)}"
            )
        return version

    def _latest_or_zero(self, name: str) -> int:
        versions = self.versions(name)
        return versions[-1] if versions else 0


def _version_dirs(model_dir: Path) -> list[int]:
    try:
        entries = list(model_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        int(e.name)
        for e in entries
        if e.name.isdigit() and e.name == str(int(e.name)) and int(e.name) >= 1 and e.is_dir()
    )


def _champion_stack(history: list[dict[str, Any]]) -> list[int]:
    """Champions in promotion order, replaying history: rollbacks pop, a clear empties it."""
    stack: list[int] = []
    for entry in history:
        if entry.get("alias") != "champion":
            continue
        action = entry.get("action", "promote")
        if action == "refused":  # recorded for the audit trail; the alias did not move
            continue
        if action == "clear" or entry.get("version") is None:
            stack.clear()
        elif action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != entry["version"]:
                stack.append(entry["version"])
        else:
            stack.append(entry["version"])
    return stack


def _write_read_only(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(text)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o444)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _listing(versions: list[int]) -> str:
    return ", ".join(str(v) for v in versions) if versions else "none"


def _describe(aliases: dict[str, int]) -> str:
    return ", ".join(f"{k}=v{v}" for k, v in sorted(aliases.items())) or "none"
