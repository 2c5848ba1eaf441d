"""Which family serves a model from elsewhere, by manifest kind or by the object itself.

The family modules import their libraries (LightGBM and XGBoost are optional extras), so
they are imported only when a model of theirs is stored, loaded or recognised.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from models.external.base import ModelFamily
from schemas.errors import RegistryError

FAMILY_MODULES: Final[dict[str, tuple[str, str, str]]] = {
    "sklearn": ("models.external.sklearn_pipeline", "SklearnFamily", "scikit-learn"),
    "lightgbm": ("models.external.boosters", "LightGBMFamily", "lightgbm"),
    "xgboost": ("models.external.boosters", "XGBoostFamily", "xgboost"),
}
"""Manifest kind -> (module, family class, the extra that installs its library)."""

EXTERNAL_KINDS: Final = frozenset(FAMILY_MODULES)


def family_for_kind(kind: str) -> ModelFamily:
    """The family of manifest kind ``kind``; RegistryError when its library is missing."""
    try:
        module_name, class_name, extra = FAMILY_MODULES[kind]
    except KeyError:
        raise RegistryError(
            f"unknown model kind {kind!r}; models from elsewhere are {sorted(FAMILY_MODULES)}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(
            f"model kind {kind!r} needs {exc.name or extra}: "
            f"pip install 'streaming-scorer[{extra}]'"
        ) from exc
    family: ModelFamily = getattr(module, class_name)()
    return family


def family_for_model(model: Any) -> ModelFamily:
    """The family that accepts ``model``, else RegistryError listing every supported family."""
    module = type(model).__module__.split(".")[0]
    order = [kind for kind in FAMILY_MODULES if kind == module] or list(FAMILY_MODULES)
    for kind in order:
        try:
            family = family_for_kind(kind)
        except RegistryError:
            continue
        if family.accepts(model):
            return family
    raise RegistryError(
        f"{type(model).__module__}.{type(model).__name__} is not a supported model; "
        f"supported: {supported_families()}"
    )


def supported_families() -> str:
    """One line naming what each family accepts (families whose library is missing say so)."""
    parts = []
    for kind in FAMILY_MODULES:
        try:
            parts.append(family_for_kind(kind).description)
        except RegistryError as exc:
            parts.append(f"{kind} ({exc})")
    return "; ".join(parts)
