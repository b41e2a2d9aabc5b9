"""pyproject.toml names every third-party package that ``lookalike`` and ``lookalike_web`` import.

Read from the source (every ``import``, lazy ones inside functions too), so a new import without
its dependency fails here rather than in a user's fresh ``pip install .``. (Installing into an
empty virtual environment, then ``lookalike --help`` and importing every module, was checked by
hand when this list was completed; it needs the package registry, so it is not a test.)
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from lookalike import config

PACKAGES = (config.REPO_ROOT / "lookalike", config.REPO_ROOT / "webapp-backend" / "lookalike_web")
OURS = {"lookalike", "lookalike_web"}


def imported_top_level_names() -> dict[str, set[str]]:
    """Top-level module name → the files that import it."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(path.name)
    return found


def declared_distributions() -> set[str]:
    project = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {_normalise(re.split(r"[\s<>=!~\[;]", requirement)[0]) for requirement in requirements}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_a_declared_dependency():
    providers = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    missing = {}
    for module, files in imported_top_level_names().items():
        if module in OURS or module in sys.stdlib_module_names:
            continue
        distributions = {_normalise(name) for name in providers.get(module, [module])}
        # tensorflow is provided by tensorflow-cpu here (the CPU wheel), by tensorflow on GPUs.
        if not distributions & declared:
            missing[module] = sorted(files)
    assert not missing, f"imported but not in pyproject.toml: {missing}"


def test_the_check_sees_lazy_imports():
    """faiss, sklearn and gunicorn are imported inside functions only: they must be found."""
    names = imported_top_level_names()
    assert {"faiss", "sklearn", "gunicorn", "seaborn"} <= set(names)
