"""The notebooks: each one executed with small parameters (papermill), then its figures checked.

Every run writes into a temporary output root (the committed notebooks are never overwritten)
and uses its own chip cache. Each notebook saves the figures its Insights quote to
``<output_dir>/<notebook>/key_figures.json``; the tests read them from there. Notebooks 01–02
run on the real ``wiki.mat`` when the developer data is present, else on the committed sample.
The committed notebooks themselves are checked statically: executed, no errors, small enough.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lookalike import comparison, config

papermill = pytest.importorskip("papermill")

NOTEBOOKS_DIR = config.REPO_ROOT / "notebooks"
NOTEBOOKS = (
    "01_dataset_validation",
    "02_exploratory_analysis",
    "03_preprocessing",
    "04_model_training",
    "05_evaluation",
    "06_index_export",
)
MAX_SAVED_BYTES = 1_500_000
WIKI_MAT = config.shared_data_dir() / "imdb" / "wiki.mat"
SAMPLE_MAT = config.REPO_ROOT / "data" / "sample" / "imdb_crop" / "imdb.mat"

# Verified counts of the real wiki.mat (shared/docs/imdb-format.md).
WIKI_REPORT = {
    "total_rows": 62_328,
    "no_face": 18_016,
    "second_face": 4_096,
    "low_score_0_to_1": 1_319,
    "missing_gender": 2_643,
    "empty_name": 124,
    "birth_year_before_1900": 1_448,
    "age_negative": 1_288,
    "age_over_100": 493,
}
WIKI_KEPT_BY_STANDARD_FILTERS = 38_138


@pytest.fixture(scope="module")
def output_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("notebook-outputs")


@pytest.fixture(scope="module", autouse=True)
def own_chip_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A chip cache of this module's own (the kernels inherit the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOKALIKE_CACHE_DIR", str(tmp_path_factory.mktemp("chip-cache")))
        yield


def run_notebook(
    name: str, output_root: Path, executed_dir: Path, **parameters: Any
) -> tuple[nbformat.NotebookNode, dict[str, Any]]:
    """Execute a notebook into ``executed_dir``; return it and its saved key figures."""
    executed = executed_dir / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / f"{name}.ipynb"),
        str(executed),
        parameters={"output_dir": str(output_root), **parameters},
        kernel_name="python3",
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
        execution_timeout=600,
    )
    notebook = nbformat.read(executed, as_version=4)
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    assert not errors, f"{name}: error outputs {errors}"
    figures = json.loads((output_root / name / "key_figures.json").read_text())
    return notebook, figures


def printed(notebook: nbformat.NotebookNode, tag: str) -> str:
    """The stdout of the code cell with this tag."""
    cell = next(c for c in notebook.cells if tag in c.get("metadata", {}).get("tags", []))
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def images_shown(notebook: nbformat.NotebookNode) -> int:
    return sum(
        1
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type in ("display_data", "execute_result")
        and ({"image/png", "image/jpeg"} & set(output.get("data", {})))
    )


def metadata_for_tests() -> tuple[Path, bool]:
    """The real wiki.mat when the developer data is here, else the committed sample."""
    return (WIKI_MAT, True) if WIKI_MAT.is_file() else (SAMPLE_MAT, False)


# --------------------------------------------------------------------------------------------
# 01 · 02: metadata
# --------------------------------------------------------------------------------------------


def test_01_dataset_validation_reports_the_known_counts(output_root: Path, tmp_path: Path) -> None:
    path, real = metadata_for_tests()
    notebook, figures = run_notebook(
        "01_dataset_validation", output_root, tmp_path, metadata_path=str(path)
    )
    assert figures["metadata_path"] == config.shown_path(path)  # no machine-specific prefix
    steps = figures["filters"]
    assert [step["filter"] for step in steps][:5] == [
        "has_face",
        "min_face_score(1)",
        "single_face",
        "age_in_range(0, 100)",
        "gender_known",
    ]
    # The filter report is consistent: removed + remaining adds up at every step.
    before = figures["rows_analysed"]
    for step in steps:
        assert step["removed"] + step["remaining"] == before
        before = step["remaining"]
    assert figures["rows_kept"] == before
    assert figures["duplicates_sample"]["crops hashed"] == 300
    if real:
        assert {k: figures["report"][k] for k in WIKI_REPORT} == WIKI_REPORT
        assert steps[4]["remaining"] == WIKI_KEPT_BY_STANDARD_FILTERS
        assert '"total_rows": 62328' in printed(notebook, "key_figures")
    else:
        assert figures["report"]["total_rows"] == 300
    assert images_shown(notebook) >= 3


def test_01_falls_back_to_the_sample_without_real_metadata(
    output_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if (config.imdb_dir() / "imdb_crop" / "imdb.mat").is_file():
        pytest.skip("a downloaded imdb.mat takes precedence over the sample here")
    monkeypatch.setenv("LOOKALIKE_SHARED_DATA", str(tmp_path / "no-shared-data"))
    _, figures = run_notebook("01_dataset_validation", tmp_path / "out", tmp_path)
    assert figures["source"] == "imdb.mat (committed sample)"
    assert figures["report"]["total_rows"] == 300


def test_02_exploratory_analysis(output_root: Path, tmp_path: Path) -> None:
    path, real = metadata_for_tests()
    notebook, figures = run_notebook(
        "02_exploratory_analysis",
        output_root,
        tmp_path,
        metadata_path=str(path),
        pairplot_rows=300,
        face_count=8,
    )
    assert 0 < figures["rows_clean"] <= figures["rows_with_face"] <= figures["rows"]
    assert 0 <= figures["age_median"] <= 100
    assert 0 < figures["male_share"] < 1
    if real:
        assert figures["rows"] == WIKI_REPORT["total_rows"]
        assert figures["rows_clean"] == WIKI_KEPT_BY_STANDARD_FILTERS
        assert figures["two_face_rows"] == WIKI_REPORT["second_face"]
    # Univariate, bivariate and multivariate views plus the face grid.
    assert images_shown(notebook) >= 9


# --------------------------------------------------------------------------------------------
# 03 – 06: the committed IMDB-layout sample
# --------------------------------------------------------------------------------------------


def test_03_preprocessing(output_root: Path, tmp_path: Path) -> None:
    _, figures = run_notebook("03_preprocessing", output_root, tmp_path, example_count=2)
    assert figures["faces_found_onet_known_box"] == 2
    assert all(count >= 1 for count in figures["faces_found_full_detection"])
    assert figures["chip_shape"] == [150, 150, 3]
    if (config.REPO_ROOT / "tests" / "assets" / "two_people.jpg").is_file():
        assert figures["group_photo_faces"] == 2
    # Standard scaling adapted on the training images: zero mean, unit spread per channel.
    assert max(abs(value) for value in figures["scaled_mean_rgb"]) < 0.01
    assert all(abs(value - 1) < 0.01 for value in figures["scaled_std_rgb"])
    assert figures["batch_shape"][1:] == [64, 64, 3]
    assert figures["split_photos"]["heldout"] > 0


@pytest.fixture(scope="module")
def trained(output_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Notebook 04 with 2 epochs: its key figures (05 evaluates its runs)."""
    _, figures = run_notebook(
        "04_model_training",
        output_root,
        tmp_path_factory.mktemp("executed-04"),
        epochs=2,
        batch_size=16,
        patience=2,
        example_count=4,
    )
    return figures


def test_04_model_training(trained: dict[str, Any], output_root: Path) -> None:
    assert set(trained["runs"]) == {"scratch", "transfer"}
    for model, run in trained["runs"].items():
        folder = Path(run["out_dir"])
        assert folder.parent == output_root / "04_model_training"
        for name in ("embedding.keras", "classifier.keras", "history.csv", "metrics.json"):
            assert (folder / name).is_file(), f"{model}: {name} missing"
        assert 1 <= run["epochs_run"] <= 2
        assert set(run["classification"]) == {"train", "validation", "test"}
        assert run["heldout"]["people"] > 0
    # Only the transfer model's new head trains; the backbone stays frozen.
    parameters = trained["parameters"]["transfer"]
    assert parameters["trainable"] < parameters["total"] / 10


def test_05_evaluation(trained: dict[str, Any], output_root: Path, tmp_path: Path) -> None:
    notebook, figures = run_notebook(
        "05_evaluation",
        output_root,
        tmp_path,
        failure_count=2,
        app_queries=6,
        reference_runs=[],
    )
    assert {"sface", "dlib-resnet", "scratch", "transfer"} <= set(figures["comparison"])
    assert figures["heldout_people"] == trained["runs"]["scratch"]["heldout"]["people"]
    # The pretrained networks are far from chance on held-out faces, even in a smoke run.
    assert figures["comparison"]["sface"]["pair_auc"] > 0.9
    # The winner may be used commercially; weights trained on research-only data may not.
    assert figures["commercial_use"][figures["chosen"]] is True
    assert figures["commercial_use"]["transfer"] is False
    choice_file = output_root / "05_evaluation" / "chosen_model.json"
    assert json.loads(choice_file.read_text())["model"] == figures["chosen"]
    assert comparison.load_choice(choice_file, root=output_root).is_file()
    assert figures["app_queries"] == 6
    assert images_shown(notebook) >= 5


def test_06_index_export_writes_an_index(output_root: Path, tmp_path: Path) -> None:
    from lookalike.index import CelebrityIndex

    notebook, figures = run_notebook(
        "06_index_export", output_root, tmp_path, max_people=20, query_count=2
    )
    index_dir = output_root / "06_index_export" / "index"
    assert (index_dir / "index.json").is_file()
    index = CelebrityIndex(index_dir)
    assert len(index) == figures["photos_indexed"] > 0
    assert figures["celebrities"] == len(index.celebrities) <= 20
    assert figures["queries"] == 2
    if (config.REPO_ROOT / "tests" / "assets" / "two_people.jpg").is_file():
        assert len(figures["extra_faces"]["two_people.jpg"]) == 2
    assert images_shown(notebook) >= 2


# --------------------------------------------------------------------------------------------
# The committed notebooks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_executed_small_and_parameterised(name: str) -> None:
    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    assert path.stat().st_size < MAX_SAVED_BYTES, f"{path.name} is too large to commit"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    tags = [tag for cell in code for tag in cell.get("metadata", {}).get("tags", [])]
    assert tags.count("parameters") == 1 and "key_figures" in tags
    assert all(cell.execution_count for cell in code), "not every cell was executed"
    assert not any(o.output_type == "error" for cell in code for o in cell.outputs)
    # Outputs name paths relative to the repository (config.shown_path), never this machine's.
    outputs = json.dumps([cell.outputs for cell in code])
    for machine_path in (config.REPO_ROOT, config.shared_data_dir(), Path.home()):
        assert str(machine_path.resolve()) not in outputs, f"{name} shows {machine_path}"
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    insights = [source for source in markdown if "## Insights" in source]
    assert insights and "PLACEHOLDER" not in insights[-1], "the Insights are not written"


# --------------------------------------------------------------------------------------------
# The shared plotting helpers (lookalike.plots)
# --------------------------------------------------------------------------------------------


def test_plots_draw_what_they_are_given(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from lookalike import calibration, plots

    faces = [np.full((20, 20, 3), value, np.uint8) for value in (0, 128, 255)]
    grid = plots.face_grid(faces, ["a", "b", "c"], columns=2, points=[None, np.ones((5, 2)), None])
    assert sum(ax.get_visible() for ax in grid.axes) == 3

    history = tmp_path / "history.csv"
    pd.DataFrame(
        {"epoch": [0, 1, 2], "loss": [3, 2, 1], "val_loss": [3, 3, 2], "accuracy": [0, 0.5, 1]}
    ).to_csv(history, index=False)
    curves = plots.training_curves(history, fine_tune_from=1)
    assert [ax.get_title() for ax in curves.axes] == ["loss", "accuracy"]
    assert len(curves.axes[0].lines) == 3  # train, validation, the fine-tuning marker

    rows = plots.image_rows([[(faces[0], "query"), None], [(faces[1], "x", "#d62728")]])
    assert [ax.get_visible() for ax in rows.axes] == [True, False, True, False]

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.repeat(np.arange(10), 4)
    same, strangers = calibration.pair_similarities(vectors, labels)
    axes = plots.similarity_distributions(same, strangers, threshold=0.5)
    assert axes.get_xlim()[1] == 1.0
    plots.score_curve(calibration.fit_calibration(vectors, labels))
    matplotlib.pyplot.close("all")
