"""Models from MLflow: a registered version, an alias or a run's artifact, taken through
MLflow's own client and read in the format the MLflow flavor saved.

The tracking and registry URIs are passed to every MLflow call, never set globally, so a
fetch leaves MLflow's configuration as it found it. An alias is resolved to its version
number first and that version is downloaded, so the lineage names the bytes taken even if
the alias moves meanwhile. A SQLite or local-folder store that does not exist is refused,
where MLflow would create an empty one on first use.

What is read, by the flavor the ``MLmodel`` file names (a library's own flavor is preferred
to ``sklearn`` when a model has several):

- ``lightgbm``: a Booster's text model (``model.lgb``), or a scikit-learn wrapper
  (``LGBMClassifier``) stored as skops or a pickle;
- ``xgboost``: the JSON or UBJSON model (``model.json``, ``model.ubj``);
- ``sklearn``: skops (``model.skops``, MLflow's default outside Databricks since 3.x) or a
  pickle / cloudpickle (``model.pkl``).

Model formats, and skops files whose every type skops trusts, are loaded without trust. A
pickle runs code when it is loaded, so it is loaded only when the caller vouches for that
very file by its sha256 (``--trust-pickle``), as is a skops file naming other types. The
``skops_trusted_types`` MLflow writes into ``MLmodel`` is ignored: it comes from the same
place as the model. Each model file is read once, and the bytes hashed are the bytes
loaded. Nothing else in the model folder is run or installed (code paths, environments).

>>> parse_mlflow_uri("models:/fraud@champion").alias
'champion'
>>> parse_mlflow_uri("models:/fraud/3").version
3
>>> ref = parse_mlflow_uri("runs:/0af3c2/model")
>>> ref.run_id, ref.artifact_path
('0af3c2', 'model')
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml

from schemas.errors import ModelSourceError

Flavor = Literal["sklearn", "lightgbm", "xgboost"]

SUPPORTED_FLAVORS: Final[tuple[Flavor, ...]] = ("lightgbm", "xgboost", "sklearn")
"""The flavors read, in the order preferred when a model has several."""

ACCEPTED_URIS: Final = "models:/<name>@<alias>, models:/<name>/<version> or runs:/<run id>/<path>"

LIGHTGBM_SKOPS_TYPES: Final = frozenset(
    {
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
    }
)
"""Types a LightGBM scikit-learn wrapper saved with skops names beyond those skops trusts
itself: the set MLflow's own code trusts for this flavor (not the list in ``MLmodel``)."""

XGBOOST_CLASSES: Final = {
    "xgboost.core.Booster": "Booster",
    "xgboost.sklearn.XGBClassifier": "XGBClassifier",
    "xgboost.sklearn.XGBRegressor": "XGBRegressor",
    "xgboost.sklearn.XGBRFClassifier": "XGBRFClassifier",
    "xgboost.sklearn.XGBRFRegressor": "XGBRFRegressor",
}
"""The ``model_class`` values of an xgboost flavor that are built, and their xgboost names;
MLflow would build whatever class the file names."""

MLFLOW_MISSING: Final = "MLflow is not installed: pip install 'streaming-scorer[mlflow]'"

_NOT_FOUND: Final = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
"""MLflow error codes meaning "no such thing" (a missing alias is an invalid parameter)."""

_URL_PASSWORD = re.compile(r"(//[^/\s:@]+):[^/\s@]+@")
_LOGGED_MODEL_URI = re.compile(r"models:/(?P<model_id>m-[0-9a-f]+)")
_MODELS_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))")
_RUNS_URI = re.compile(r"runs:/(?P<run_id>[^/]+)/(?P<path>.*[^/].*)")


@dataclass(frozen=True)
class FetchedModel:
    """A model taken from MLflow: the loaded estimator or booster, the flavor it was read
    from, and where it came from (JSON-serialisable, for the manifest's lineage)."""

    model: Any
    flavor: Flavor
    lineage: dict[str, Any]


@dataclass(frozen=True)
class MlflowUri:
    """A model URI as MLflow names it: a registered version or alias, or a run's artifact."""

    uri: str
    model_name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    artifact_path: str | None = None


@dataclass(frozen=True)
class _ModelFile:
    """The model file of a flavor, read once: the bytes hashed are the bytes loaded."""

    name: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class _Loaded:
    model: Any
    file: _ModelFile
    vouched: bool
    """Whether loading relied on the caller's ``--trust-pickle``."""


def parse_mlflow_uri(uri: str) -> MlflowUri:
    """The parts of ``uri``; ModelSourceError naming the accepted forms for any other."""
    if match := _MODELS_URI.fullmatch(uri):
        version = match["version"]
        return MlflowUri(
            uri=uri,
            model_name=match["name"],
            version=int(version) if version is not None else None,
            alias=match["alias"],
        )
    if match := _RUNS_URI.fullmatch(uri):
        return MlflowUri(uri=uri, run_id=match["run_id"], artifact_path=match["path"].strip("/"))
    raise ModelSourceError(f"unsupported MLflow model URI {uri!r}: expected {ACCEPTED_URIS}")


def fetch_mlflow_model(
    uri: str, *, tracking_uri: str | None = None, trust_pickle: str | None = None, workdir: Path
) -> FetchedModel:
    """Take the model ``uri`` names from MLflow, download it under ``workdir`` and load it.

    ``tracking_uri`` is the tracking and registry URI for this call (default: MLflow's own,
    from ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI``). ``trust_pickle`` is the
    sha256 of a pickled model file the caller vouches for; it is needed only for such a
    file. Every failure is one ModelSourceError line.
    """
    ref = parse_mlflow_uri(uri)
    mlflow = _import_mlflow()
    tracking = tracking_uri or mlflow.get_tracking_uri()
    registry = tracking_uri or mlflow.get_registry_uri()
    for store in {tracking, registry}:
        _require_existing_store(store)
    client = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=registry)
    lineage, artifact_uri = _resolve(client, ref, tracking=tracking, registry=registry)
    model_dir = _download(mlflow, artifact_uri, workdir, tracking=tracking, label=uri)
    flavor, conf = _flavor(model_dir, uri)
    loaded = _LOADERS[flavor](model_dir, conf, trust_pickle)
    lineage.update(
        flavor=flavor,
        artifact_file=loaded.file.name,
        artifact_sha256=loaded.file.sha256,
        trusted_pickle=loaded.vouched,
    )
    return FetchedModel(model=loaded.model, flavor=flavor, lineage=lineage)


def _import_mlflow() -> ModuleType:
    try:
        import mlflow
        import mlflow.artifacts
    except ImportError as exc:
        raise ModelSourceError(MLFLOW_MISSING) from exc
    return mlflow


def _require_existing_store(uri: str) -> None:
    """Refuse a local store that does not exist: MLflow would create an empty one."""
    parts = urlsplit(uri)
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///").split("?", 1)[0]
        if path and not Path(path).is_file():
            raise ModelSourceError(
                f"no MLflow database at {path} (tracking URI {uri}); "
                "pass the tracking URI of an existing store or set MLFLOW_TRACKING_URI"
            )
    elif (
        parts.scheme == "file" or (parts.scheme == "" and not uri.startswith("databricks"))
    ) and not Path(parts.path).is_dir():
        raise ModelSourceError(
            f"no MLflow store at {parts.path} (tracking URI {uri}); "
            "pass the tracking URI of an existing store or set MLFLOW_TRACKING_URI"
        )


def _resolve(
    client: Any, ref: MlflowUri, *, tracking: str, registry: str
) -> tuple[dict[str, Any], str]:
    """The lineage of ``ref`` and the artifact URI of exactly that model.

    The location is always asked of ``client``: given a ``models:/`` URI, or a ``runs:/`` URI
    naming a model logged in the run, ``download_artifacts`` resolves it against MLflow's
    global registry and tracking URIs, whatever URIs it was passed.
    """
    lineage: dict[str, Any] = {
        "source": "mlflow",
        "uri": ref.uri,
        "tracking_uri": _redacted(tracking),
        "run_id": ref.run_id,
        "model_name": ref.model_name,
        "model_version": ref.version,
        "alias": ref.alias,
        "artifact_path": ref.artifact_path,
        "model_id": None,
    }
    if ref.run_id is not None:
        location, model_id = _run_model_location(
            client, ref.run_id, ref.artifact_path or "", _redacted(tracking)
        )
        lineage.update(model_id=model_id)
        return lineage, location
    where = _redacted(registry)
    version = _model_version(client, ref, where)
    lineage.update(
        run_id=version.run_id or None,
        model_version=int(version.version),
        model_id=_logged_model_id(version),
    )
    missing = f"registered model {ref.model_name!r} version {version.version} has no artifacts"
    with _mlflow_errors(where, f"locate {ref.uri}", missing):
        location = client.get_model_version_download_uri(ref.model_name, version.version)
    return lineage, location


def _logged_model_id(version: Any) -> str | None:
    """The logged model a registered version was made from (MLflow 3), else None; the
    SQL store leaves ``model_id`` empty and names it only in the version's source."""
    if model_id := getattr(version, "model_id", None):
        return str(model_id)
    match = _LOGGED_MODEL_URI.fullmatch(str(version.source or ""))
    return match["model_id"] if match else None


def _run_model_location(client: Any, run_id: str, path: str, where: str) -> tuple[str, str | None]:
    """Where the model at ``path`` in run ``run_id`` is stored, and its logged-model id.

    MLflow 3 stores a model logged in a run as a logged model outside the run's artifacts,
    found by its name and source run; other paths (and MLflow 2 models) are run artifacts.
    """
    with _mlflow_errors(where, f"read run {run_id}", f"MLflow at {where} has no run {run_id!r}"):
        run = client.get_run(run_id)
    name, _, rest = path.partition("/")
    if hasattr(client, "search_logged_models"):
        with _mlflow_errors(where, f"search the models of run {run_id}"):
            logged = client.search_logged_models(
                experiment_ids=[run.info.experiment_id], filter_string=f"name = '{name}'"
            )
        for model in logged:
            if model.source_run_id == run_id:
                location = str(model.artifact_location).rstrip("/")
                return (f"{location}/{rest}" if rest else location), str(model.model_id)
    return f"runs:/{run_id}/{path}", None


def _model_version(client: Any, ref: MlflowUri, where: str) -> Any:
    """The registered model version ``ref`` names, by number or through its alias."""
    name = ref.model_name
    missing = f"MLflow at {where} has no registered model {name!r}"
    with _mlflow_errors(where, f"read model {name!r}", missing):
        registered = client.get_registered_model(name)
    if ref.alias is not None:
        known = ", ".join(sorted(registered.aliases or {})) or "none"
        missing = f"registered model {name!r} has no alias {ref.alias!r} (aliases: {known})"
        with _mlflow_errors(where, f"resolve {ref.uri}", missing):
            return client.get_model_version_by_alias(name, ref.alias)
    missing = f"registered model {name!r} has no version {ref.version}"
    with _mlflow_errors(where, f"read {ref.uri}", missing):
        return client.get_model_version(name, str(ref.version))


def _download(
    mlflow: ModuleType, artifact_uri: str, workdir: Path, *, tracking: str, label: str
) -> Path:
    """The local folder of the model at ``artifact_uri`` (``label`` to the user),
    downloaded under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    where = _redacted(tracking)
    missing = f"MLflow at {where} has no model at {label}"
    with _mlflow_errors(where, f"download {label}", missing):
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, dst_path=str(workdir), tracking_uri=tracking
        )
    model_dir = Path(local)
    if not (model_dir / "MLmodel").is_file():
        raise ModelSourceError(f"{label} is not an MLflow model: it has no MLmodel file")
    return model_dir


@contextmanager
def _mlflow_errors(where: str, action: str, missing: str | None = None) -> Iterator[None]:
    """Translate what an MLflow call raises into one ModelSourceError line.

    ``missing`` is the message when MLflow answers that the thing asked for does not exist.
    """
    try:
        yield
    except Exception as exc:  # MLflow, its stores and requests raise many types
        detail = _first_line(exc)
        if missing is not None and getattr(exc, "error_code", None) in _NOT_FOUND:
            raise ModelSourceError(missing) from exc
        if _unreachable(exc):
            raise ModelSourceError(
                f"no MLflow tracking server answers at {where}: {detail}"
            ) from exc
        raise ModelSourceError(f"MLflow at {where} cannot {action}: {detail}") from exc


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` came from a server that could not be connected to or timed out."""
    from requests.exceptions import ConnectionError, Timeout

    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return any(isinstance(link, ConnectionError | Timeout) for link in chain)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of ``exc``'s message, shortened, with URL passwords masked."""
    lines = str(exc).strip().splitlines()
    line = _URL_PASSWORD.sub(r"\1:***@", lines[0]) if lines else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _redacted(uri: str) -> str:
    """``uri`` without the password of its user info, so lineage and messages never hold it.

    >>> _redacted("https://ana:s3cret@mlflow.example:5000/path")
    'https://ana:***@mlflow.example:5000/path'
    """
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _flavor(model_dir: Path, uri: str) -> tuple[Flavor, dict[str, Any]]:
    """The supported flavor the model's ``MLmodel`` file names, and its configuration."""
    path = model_dir / "MLmodel"
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelSourceError(f"cannot read the MLmodel file of {uri}: {exc}") from exc
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        raise ModelSourceError(f"the MLmodel file of {uri} names no flavor")
    for flavor in SUPPORTED_FLAVORS:
        if isinstance(flavors.get(flavor), dict):
            return flavor, flavors[flavor]
    raise ModelSourceError(
        f"{uri} has MLflow flavor(s) {', '.join(sorted(map(str, flavors)))}; "
        f"supported: {', '.join(sorted(SUPPORTED_FLAVORS))}"
    )


def _model_file(model_dir: Path, conf: dict[str, Any], key: str) -> _ModelFile:
    """The file the flavor configuration names under ``key``, inside ``model_dir``."""
    name = conf.get(key)
    if not isinstance(name, str) or not name:
        raise ModelSourceError(f"the MLmodel file in {model_dir} names no model file ({key})")
    path = (model_dir / name).resolve()
    if not path.is_relative_to(model_dir.resolve()) or not path.is_file():
        raise ModelSourceError(f"model file {name!r} is not a file inside {model_dir}")
    data = path.read_bytes()
    return _ModelFile(name=name, data=data, sha256=hashlib.sha256(data).hexdigest())


def _library(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ModelSourceError(
            f"the {name} flavor needs {name}: pip install 'streaming-scorer[{name}]'"
        ) from exc


def _load_sklearn(model_dir: Path, conf: dict[str, Any], trust: str | None) -> _Loaded:
    file = _model_file(model_dir, conf, "pickled_model")
    # MLflow before skops support wrote no format and reads such a file as a plain pickle.
    return _deserialise(file, conf.get("serialization_format", "pickle"), trust, frozenset())


def _load_lightgbm(model_dir: Path, conf: dict[str, Any], trust: str | None) -> _Loaded:
    file = _model_file(model_dir, conf, "data")
    model_class = conf.get("model_class", "lightgbm.basic.Booster")
    if model_class != "lightgbm.basic.Booster":
        # A scikit-learn wrapper; MLflow before skops support cloudpickled it.
        fmt = conf.get("serialization_format", "cloudpickle")
        return _deserialise(file, fmt, trust, LIGHTGBM_SKOPS_TYPES)
    lightgbm = _library("lightgbm")
    try:
        booster = lightgbm.Booster(model_str=file.data.decode("utf-8"))
    except (UnicodeDecodeError, lightgbm.basic.LightGBMError) as exc:
        raise ModelSourceError(f"{file.name} is not a LightGBM text model: {exc}") from exc
    return _Loaded(model=booster, file=file, vouched=False)


def _load_xgboost(model_dir: Path, conf: dict[str, Any], trust: str | None) -> _Loaded:
    model_class = conf.get("model_class", "xgboost.core.Booster")
    if model_class not in XGBOOST_CLASSES:
        raise ModelSourceError(
            f"xgboost model class {model_class!r} is not read; read: {', '.join(XGBOOST_CLASSES)}"
        )
    file = _model_file(model_dir, conf, "data")
    xgboost = _library("xgboost")
    model = getattr(xgboost, XGBOOST_CLASSES[model_class])()
    try:
        model.load_model(bytearray(file.data))
    except xgboost.core.XGBoostError as exc:
        raise ModelSourceError(
            f"{file.name} is not an XGBoost JSON or UBJSON model: {_first_line(exc)}"
        ) from exc
    return _Loaded(model=model, file=file, vouched=False)


_LOADERS: Final[dict[Flavor, Callable[[Path, dict[str, Any], str | None], _Loaded]]] = {
    "sklearn": _load_sklearn,
    "lightgbm": _load_lightgbm,
    "xgboost": _load_xgboost,
}


def _deserialise(
    file: _ModelFile, fmt: object, trust: str | None, also_trusted: frozenset[str]
) -> _Loaded:
    """A scikit-learn-style model from skops, pickle or cloudpickle bytes."""
    if fmt == "skops":
        return _load_skops(file, trust, also_trusted)
    if fmt not in ("pickle", "cloudpickle"):
        raise ModelSourceError(
            f"{file.name} has serialization format {fmt!r}; read: skops, pickle, cloudpickle"
        )
    _require_vouched(file, trust, f"a {fmt} file")
    try:
        if fmt == "cloudpickle":
            import cloudpickle

            model = cloudpickle.loads(file.data)
        else:
            model = pickle.loads(file.data)
    except Exception as exc:  # a pickle can raise nearly anything
        raise ModelSourceError(f"{file.name} cannot be unpickled: {_first_line(exc)}") from exc
    return _Loaded(model=model, file=file, vouched=True)


def _load_skops(file: _ModelFile, trust: str | None, also_trusted: frozenset[str]) -> _Loaded:
    """Load a skops file; types skops does not trust beyond ``also_trusted`` need a vouch."""
    import skops.io as sio

    try:
        named = list(sio.get_untrusted_types(data=file.data))
    except Exception as exc:  # skops raises many types; all mean "not a skops file"
        raise ModelSourceError(
            f"{file.name} is not a valid skops file: {_first_line(exc)}"
        ) from exc
    beyond = sorted(set(named) - also_trusted)
    if beyond:
        _require_vouched(
            file, trust, f"a skops file naming types skops does not trust ({', '.join(beyond)})"
        )
    try:
        model = sio.loads(file.data, trusted=named)
    except Exception as exc:  # skops raises many types; all mean "cannot load"
        raise ModelSourceError(
            f"{file.name} cannot be loaded by skops: {_first_line(exc)}"
        ) from exc
    return _Loaded(model=model, file=file, vouched=bool(beyond))


def _require_vouched(file: _ModelFile, trust: str | None, what: str) -> None:
    """Refuse unless ``trust`` is the sha256 of ``file``'s bytes."""
    if trust is None:
        raise ModelSourceError(
            f"{file.name} is {what}, which can run code when loaded; to vouch for this file: "
            f"--trust-pickle {file.sha256}"
        )
    if trust.strip().lower() != file.sha256:
        raise ModelSourceError(
            f"--trust-pickle {trust.strip()} does not match {file.name}, whose sha256 is "
            f"{file.sha256}"
        )
