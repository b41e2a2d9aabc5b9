"""What a training run is: :class:`TrainingConfig` (a preset, a JSON file, overrides), checked.

A config has a ``data`` section (:class:`lookalike.training_data.DataConfig`), a ``training``
section (:class:`FitConfig`) and one section per model type (``scratch``, ``transfer``:
:mod:`lookalike.models`); ``model`` picks which model section is used. Unknown keys and
mistyped values are refused with the key's name. Presets ship in ``lookalike/presets/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from lookalike import models
from lookalike.errors import InvalidInputError
from lookalike.training_data import DataConfig

MODEL_TYPES = ("scratch", "transfer")
DISTRIBUTE = ("auto", "none", "mirrored")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """How to fit (the ``training`` section)."""

    batch_size: int = 64
    epochs: int = 30
    learning_rate: float = 1e-3
    patience: int = 5  # epochs without a better validation loss before stopping
    mixed_precision: bool | None = None  # None: on when a GPU is visible
    distribute: str = "auto"  # auto: MirroredStrategy when several GPUs are visible

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInputError(
                f"training.batch_size must be at least 1, got {self.batch_size}"
            )
        if self.epochs < 1:
            raise InvalidInputError(f"training.epochs must be at least 1, got {self.epochs}")
        if self.learning_rate <= 0:
            raise InvalidInputError(
                f"training.learning_rate must be positive, got {self.learning_rate}"
            )
        if self.patience < 1:
            raise InvalidInputError(f"training.patience must be at least 1, got {self.patience}")
        if self.distribute not in DISTRIBUTE:
            raise InvalidInputError(f"training.distribute must be one of {', '.join(DISTRIBUTE)}")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything a training run needs; ``model`` picks which model section is used."""

    name: str = "run"
    model: str = "scratch"
    description: str = ""
    data: DataConfig = DataConfig()
    training: FitConfig = FitConfig()
    scratch: models.ScratchConfig = models.ScratchConfig()
    transfer: models.TransferConfig = models.TransferConfig()

    def __post_init__(self) -> None:
        if self.model not in MODEL_TYPES:
            raise InvalidInputError(
                f"unknown model type {self.model!r} (choose {' or '.join(MODEL_TYPES)})"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise InvalidInputError(f"name must be a plain folder name, got {self.name!r}")

    @property
    def run_name(self) -> str:
        """The output folder's name: ``<name>-<model>``."""
        return f"{self.name}-{self.model}"

    @property
    def model_settings(self) -> models.ScratchConfig | models.TransferConfig:
        return self.scratch if self.model == "scratch" else self.transfer

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Parse a config dict (missing keys take defaults; unknown keys are errors)."""
        sections = {
            "data": DataConfig,
            "training": FitConfig,
            "scratch": models.ScratchConfig,
            "transfer": models.TransferConfig,
        }
        top = _checked_section(cls, values, "config", nested=set(sections))
        for key, section_class in sections.items():
            if key in top:
                top[key] = section_class(**_checked_section(section_class, top[key], key))
        return cls(**top)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _checked_section(
    cls: type, values: Any, where: str, nested: set[str] | None = None
) -> dict[str, Any]:
    """``values`` with unknown keys and mistyped values refused (types from the defaults)."""
    if not isinstance(values, dict):
        raise InvalidInputError(f"{where} must be a JSON object, got {type(values).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidInputError(
            f"unknown key(s) in {where}: {', '.join(unknown)} (known: {', '.join(sorted(fields))})"
        )
    for key, value in values.items():
        if nested and key in nested:
            continue
        annotation = str(fields[key].type)
        if not _type_matches(value, annotation):
            raise InvalidInputError(f"{where}.{key} must be {annotation}, got {value!r}")
    return dict(values)


def _type_matches(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field annotation such as ``int | None`` or ``float``."""
    allowed = {part.strip() for part in annotation.split("|")}
    if any(kind.startswith("tuple") for kind in allowed):
        return isinstance(value, list | tuple)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    checks = {
        "None": value is None,
        "bool": isinstance(value, bool),
        "int": is_number and isinstance(value, int),
        "float": is_number,
        "str": isinstance(value, str),
    }
    return any(checks.get(kind, False) for kind in allowed)


# --------------------------------------------------------------------------------------------
# Presets and overrides
# --------------------------------------------------------------------------------------------


def list_presets() -> list[str]:
    """Names of the presets shipped in ``lookalike/presets/``."""
    folder = resources.files("lookalike") / "presets"
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".json"))


def load_config(
    preset: str | None = None,
    config_file: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainingConfig:
    """A validated config from a preset name or a JSON file, with dotted-key overrides.

    ``overrides={"training.epochs": 3, "model": "transfer"}`` replaces single values.
    """
    if (preset is None) == (config_file is None):
        raise InvalidInputError("give exactly one of a preset name or a config file")
    if preset is not None:
        if preset not in list_presets():
            raise InvalidInputError(
                f"unknown preset {preset!r} (presets: {', '.join(list_presets())})"
            )
        text = (resources.files("lookalike") / "presets" / f"{preset}.json").read_text("utf-8")
        where = f"preset {preset}"
    else:
        text = Path(config_file).read_text(encoding="utf-8")  # type: ignore[arg-type]
        where = str(config_file)
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"{where} is not valid JSON: {error}") from error
    for dotted, value in (overrides or {}).items():
        *parents, key = dotted.split(".")
        section = values
        for parent in parents:
            section = section.setdefault(parent, {})
            if not isinstance(section, dict):
                raise InvalidInputError(f"cannot set {dotted}: {parent} is not a section")
        section[key] = value
    return TrainingConfig.from_dict(values)
