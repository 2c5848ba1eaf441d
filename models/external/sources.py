"""Reading a model file made elsewhere, without running pickle.

``scorer models register --artifact PATH`` accepts three formats, told apart by ``--format``
or else by the file's name:

- ``skops``: a scikit-learn estimator or pipeline saved with ``skops.io.dump`` (``.skops``);
- ``lightgbm``: a LightGBM booster in its text model format (``Booster.save_model``;
  ``.txt``, ``.lgb``, ``.model``);
- ``xgboost``: an XGBoost booster in its JSON or UBJSON format (``.json``, ``.ubj``).

A pickle (``.pkl``, ``.pickle``, ``.joblib``, or any file that starts like one) is refused
whatever its name: loading it would run whatever code it names.

>>> format_for_path(Path("model.skops")), format_for_path(Path("booster.ubj"))
('skops', 'xgboost')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from schemas.errors import ContractError, RegistryError

FORMATS: Final = ("skops", "lightgbm", "xgboost")
SUFFIXES: Final[dict[str, str]] = {
    ".skops": "skops",
    ".txt": "lightgbm",
    ".lgb": "lightgbm",
    ".model": "lightgbm",
    ".json": "xgboost",
    ".ubj": "xgboost",
}
PICKLE_SUFFIXES: Final = (".pkl", ".pickle", ".joblib", ".sav")


@dataclass(frozen=True)
class ModelFile:
    """A model read from a file, and the file's identity for the manifest's lineage."""

    model: Any
    format: str
    path: Path
    sha256: str

    @property
    def lineage(self) -> dict[str, Any]:
        return {
            "source": "file",
            "path": str(self.path),
            "format": self.format,
            "sha256": self.sha256,
        }


def format_for_path(path: Path) -> str:
    """The format a file's name implies; ContractError when it implies none."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise ContractError(_pickle_refusal(path))
    try:
        return SUFFIXES[suffix]
    except KeyError:
        raise ContractError(
            f"{path}: cannot tell the model format from the name; pass --format {'|'.join(FORMATS)}"
        ) from None


def read_model_file(path: Path, fmt: str | None = None) -> ModelFile:
    """The model in ``path`` (format ``fmt``, else from its name), never unpickled."""
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise ContractError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ContractError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ContractError(f"cannot read model file {path}: {exc.strerror}") from exc
    if _looks_pickled(data):
        raise ContractError(_pickle_refusal(path))
    fmt = fmt or format_for_path(path)
    if fmt == "skops":
        from models.external.sklearn_pipeline import read_skops_file

        model = read_skops_file(path)
    elif fmt == "lightgbm":
        from models.external.boosters import read_lightgbm_file

        model = _with_library("lightgbm", lambda: read_lightgbm_file(path))
    else:
        from models.external.boosters import read_xgboost_file

        model = _with_library("xgboost", lambda: read_xgboost_file(path))
    return ModelFile(model, fmt, path, hashlib.sha256(data).hexdigest())


def _looks_pickled(data: bytes) -> bool:
    """A pickle of protocol 2 or later starts with PROTO (0x80) and the protocol number;
    joblib files are pickles too, possibly compressed (zlib, gzip, bz2, xz, lz4 magics)."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    return data.startswith((b"\x78\x9c", b"\x78\x01", b"\x78\xda", b"\x1f\x8b", b"BZh"))


def _pickle_refusal(path: Path) -> str:
    return (
        f"{path}: pickle files are not accepted (loading one runs the code it names); save "
        "a scikit-learn model with skops.io.dump, a LightGBM booster with save_model, an "
        "XGBoost booster with save_model('model.json')"
    )


def _with_library(extra: str, read: Any) -> Any:
    try:
        return read()
    except ImportError as exc:
        raise RegistryError(
            f"reading a {extra} model needs {exc.name or extra}: "
            f"pip install 'streaming-scorer[{extra}]'"
        ) from exc
