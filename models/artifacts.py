"""Safe model artifacts: bytes that are checked before they are turned back into a model.

An artifact is loaded only when its bytes match the sha256 and size recorded in the manifest.
The file is read once, and the checked bytes are the ones deserialised, so the file cannot be
swapped between the check and the load.

- scikit-learn models (kinds ``logistic`` and ``gbt``) are stored with skops, which rebuilds
  objects without running pickle. skops trusts a lot by default (every scikit-learn
  estimator), so every type named in the file must also be on :data:`SKOPS_TRUSTED_TYPES`,
  an explicit allow-list for the models this project trains; anything else is refused.
- models from elsewhere (kinds ``sklearn``, ``lightgbm``, ``xgboost``) are stored by their
  family (:mod:`models.external`): skops under the family's own allow-list, LightGBM's text
  model format, XGBoost's JSON or UBJSON; none of them runs pickle.
- river models (kind ``river-logistic``) are pickled. Their bytes are hash-checked before
  unpickling, and the unpickler only resolves river classes and a few harmless standard
  types (:data:`PICKLE_TRUSTED_MODULES`, :data:`PICKLE_TRUSTED_GLOBALS`).

>>> format_for_kind("gbt"), ARTIFACT_FILES[format_for_kind("river-logistic")]
('skops', 'artifact.pkl')
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Final

import skops.io as sio

from models.external.families import EXTERNAL_KINDS, family_for_kind
from models.manifest import ArtifactFormat, ArtifactInfo
from schemas.errors import ArtifactIntegrityError, RegistryError

ARTIFACT_FILES: Final[dict[str, str]] = {
    "skops": "artifact.skops",
    "pickle": "artifact.pkl",
    "lightgbm-text": "artifact.lgb.txt",
    "xgboost-json": "artifact.xgb.json",
    "xgboost-ubj": "artifact.xgb.ubj",
}
"""The artifact's file name in its version folder, by format."""

KIND_FORMATS: Final[dict[str, ArtifactFormat]] = {
    "logistic": "skops",
    "gbt": "skops",
    "river-logistic": "pickle",
}

SKOPS_TRUSTED_TYPES: Final[frozenset[str]] = frozenset(
    {
        # containers and scalars skops writes for any object
        "builtins.bool",
        "builtins.dict",
        "builtins.float",
        "builtins.int",
        "builtins.list",
        "builtins.NoneType",
        "builtins.str",
        "builtins.tuple",
        # numpy arrays, scalars and the random state kept by tree ensembles
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.bool_",
        "numpy.float32",
        "numpy.float64",
        "numpy.int32",
        "numpy.int64",
        "numpy.intp",
        "numpy.str_",
        "numpy.random.mtrand.RandomState",
        # the pipelines this project trains
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.dummy.DummyClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._tree.Tree",
        # the loss objects a fitted GradientBoostingClassifier keeps
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
    }
)
"""Every type a scikit-learn artifact may name; a file naming any other type is refused."""

PICKLE_TRUSTED_MODULES: Final[tuple[str, ...]] = ("river.",)
"""Module prefixes whose globals a river artifact may reference."""

PICKLE_TRUSTED_GLOBALS: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("builtins", "bool"),
        ("builtins", "complex"),
        ("builtins", "dict"),
        ("builtins", "float"),
        ("builtins", "frozenset"),
        ("builtins", "int"),
        ("builtins", "list"),
        ("builtins", "set"),
        ("builtins", "slice"),
        ("builtins", "str"),
        ("builtins", "tuple"),
        ("collections", "Counter"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "deque"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("random", "Random"),
    }
)
"""Standard globals a river artifact may reference besides river's own classes."""


def format_for_kind(kind: str) -> ArtifactFormat:
    """The artifact format used for a model kind trained here."""
    try:
        return KIND_FORMATS[kind]
    except KeyError:
        raise RegistryError(
            f"unknown model kind {kind!r}; expected one of {sorted(KIND_FORMATS)}"
        ) from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_artifact(model: Any, kind: str, directory: Path) -> ArtifactInfo:
    """Serialise ``model`` into ``directory`` and describe the bytes written.

    The model is refused (RegistryError) when it could not be loaded back under the trusted
    lists, so that an unloadable version is never registered.
    """
    if kind in EXTERNAL_KINDS:
        family = family_for_kind(kind)
        external_format, data = family.dumps(model)
        family.loads(external_format, data)
        return _write(data, external_format, directory)  # type: ignore[arg-type]
    fmt = format_for_kind(kind)
    if fmt == "skops":
        data = sio.dumps(model)
        untrusted = skops_untrusted_types(data)
        if untrusted:
            raise RegistryError(
                f"cannot store a {type(model).__name__} as {kind!r}: type(s) "
                f"{', '.join(untrusted)} not on the trusted list of models.artifacts"
            )
    else:
        module = type(model).__module__
        if not module.startswith(PICKLE_TRUSTED_MODULES):
            raise RegistryError(f"kind {kind!r} needs a river model, got {module}.{type(model)}")
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _restricted_unpickle(data)
        except ArtifactIntegrityError as exc:
            raise RegistryError(f"cannot store {type(model).__name__}: {exc}") from exc
    return _write(data, fmt, directory)


def _write(data: bytes, fmt: ArtifactFormat, directory: Path) -> ArtifactInfo:
    path = Path(directory) / ARTIFACT_FILES[fmt]
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return ArtifactInfo(file=path.name, format=fmt, sha256=sha256_hex(data), size_bytes=len(data))


def read_verified(path: Path, info: ArtifactInfo) -> bytes:
    """The artifact's bytes, read once, after checking their size and sha256 against ``info``."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ArtifactIntegrityError(f"artifact missing: {path}") from None
    except OSError as exc:
        raise ArtifactIntegrityError(f"cannot read artifact {path}: {exc.strerror}") from exc
    if len(data) != info.size_bytes:
        raise ArtifactIntegrityError(
            f"artifact {path} has {len(data)} bytes, manifest says {info.size_bytes} "
            "(truncated or replaced)"
        )
    actual = sha256_hex(data)
    if actual != info.sha256:
        raise ArtifactIntegrityError(
            f"artifact {path} sha256 mismatch: expected {info.sha256}, got {actual} "
            "(tampered or replaced)"
        )
    return data


def load_artifact(path: Path, info: ArtifactInfo, kind: str | None = None) -> Any:
    """Check the artifact file at ``path`` against ``info``, then deserialise those bytes
    (a model from elsewhere, ``kind`` in :data:`EXTERNAL_KINDS`, by its family)."""
    data = read_verified(path, info)
    if kind in EXTERNAL_KINDS:
        try:
            return family_for_kind(kind).loads(info.format, data)
        except ArtifactIntegrityError:
            raise
        except Exception as exc:  # a library refusing its own bytes: corrupt or replaced
            raise ArtifactIntegrityError(f"artifact {path} cannot be loaded: {exc}") from exc
    if info.format == "skops":
        return _load_skops(data, path)
    return _restricted_unpickle(data)


def skops_types(data: bytes) -> set[str]:
    """Every ``module.Class`` a skops file names, read from its schema without loading it."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node:
                found.add(f"{node.get('__module__')}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def skops_untrusted_types(data: bytes, trusted: frozenset[str] = SKOPS_TRUSTED_TYPES) -> list[str]:
    """Types in a skops file that are not on ``trusted`` (sorted)."""
    named = skops_types(data) | set(sio.get_untrusted_types(data=data))
    return sorted(named - trusted)


def load_skops(
    data: bytes,
    trusted: frozenset[str],
    where: str,
    error: type[RegistryError] = ArtifactIntegrityError,
    hint: str = "",
) -> Any:
    """The object in skops ``data``, only when every type the file names is on ``trusted``;
    else ``error`` naming ``where`` (and ``hint`` after an untrusted-types refusal)."""
    try:
        untrusted = skops_untrusted_types(data, trusted)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise error(f"{where} is not a valid skops file: {_one_line(exc)}") from exc
    if untrusted:
        raise error(f"{where} refused: untrusted type(s) {', '.join(untrusted)}{hint}")
    try:
        return sio.loads(data, trusted=sorted(trusted))
    except Exception as exc:  # skops raises many types; all mean "cannot load"
        raise error(f"{where} cannot be loaded by skops: {_one_line(exc)}") from exc


def _load_skops(data: bytes, path: Path) -> Any:
    return load_skops(data, SKOPS_TRUSTED_TYPES, f"artifact {path}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class _RiverUnpickler(pickle.Unpickler):
    """An unpickler that resolves only river classes and a few harmless standard types."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in PICKLE_TRUSTED_GLOBALS or (
            module.startswith(PICKLE_TRUSTED_MODULES) and not name.startswith("_")
        ):
            return super().find_class(module, name)
        raise ArtifactIntegrityError(f"pickled artifact refused: untrusted global {module}.{name}")


def _restricted_unpickle(data: bytes) -> Any:
    try:
        return _RiverUnpickler(io.BytesIO(data)).load()
    except ArtifactIntegrityError:
        raise
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise ArtifactIntegrityError(f"pickled artifact cannot be loaded: {exc}") from exc
