"""``lookalike data``: download the IMDB-WIKI files, validate a ``.mat``, build a fixture."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lookalike import config
from lookalike.cli import require_at_least_one

DATASETS = ("imdb", "imdb-meta", "wiki")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lookalike data {validate,make-fixture,download}``."""
    data = subparsers.add_parser("data", help="download, validate and build IMDB-layout data")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    default_mat = config.sample_dir() / "imdb_crop" / "imdb.mat"
    validate = actions.add_parser("validate", help="count the problems of an imdb.mat/wiki.mat")
    validate.add_argument("--mat", type=Path, default=None, help=f"default: {default_mat}")
    validate.add_argument("--min-score", type=float, default=1.0, help="face_score threshold")
    validate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    validate.set_defaults(handler=run_validate)

    fixture = actions.add_parser(
        "make-fixture", help="IMDB-layout imdb.mat + crops from a folder-per-person photo set"
    )
    fixture.add_argument("--people-dir", type=Path, required=True, help="<dir>/<Person_Name>/*.jpg")
    fixture.add_argument("--out", type=Path, default=None, help=f"default: {config.sample_dir()}")
    fixture.add_argument("--people-csv", type=Path, help="name,birth_date,gender,photo_year")
    fixture.add_argument("--max-people", type=int, help="random subset of this many people")
    fixture.add_argument("--max-photos", type=int, help="at most this many photos per person")
    fixture.add_argument("--seed", type=int, default=0, help="for the random choices")
    fixture.add_argument("--quality", type=int, default=85, help="JPEG quality of the crops")
    fixture.add_argument("--overwrite", action="store_true", help="replace an existing imdb_crop")
    fixture.set_defaults(handler=run_make_fixture)

    download = actions.add_parser("download", help="fetch and unpack an IMDB-WIKI archive")
    download.add_argument("dataset", choices=DATASETS)
    download.add_argument(
        "--dest", type=Path, default=None, help=f"default: {config.imdb_dir()} (wiki: data/wiki)"
    )
    download.add_argument("--base-url", default=None, help="mirror of the ETH download folder")
    download.add_argument(
        "--no-extract", action="store_true", help="download the .tar only, do not unpack it"
    )
    download.set_defaults(handler=run_download)


def run_validate(args: argparse.Namespace) -> int:
    """Print the validation report and what each standard filter removes."""
    from lookalike import cleaning, imdb

    path = args.mat or config.sample_dir() / "imdb_crop" / "imdb.mat"
    df = imdb.load_metadata(path)
    report = cleaning.validation_report(df, min_score=args.min_score)
    kept, steps = cleaning.apply_filters(df, cleaning.standard_filters(args.min_score))
    celebrities = {
        "all_rows": cleaning.distinct_celebrities(df),
        "kept_rows": cleaning.distinct_celebrities(kept),
    }
    if args.json:
        summary = {"file": str(path), "report": report, "filters": steps, "kept": len(kept)}
        print(json.dumps(summary | {"celebrities": celebrities}))
        return 0
    print(f"{path} ({df.attrs['variable']}, {len(df):,} rows)")
    print(format_validation(None, report, steps))
    print(
        f"\n  distinct celebrities: {celebrities['all_rows']:,} in all rows, "
        f"{celebrities['kept_rows']:,} after the filters"
    )
    return 0


def format_validation(path: object, report: dict, steps: list[dict]) -> str:
    """The problem counts and filter table of ``lookalike data validate``, as text."""
    lines = [str(path)] if path is not None else []
    lines += [f"  {key:<24} {count:>9,}" for key, count in report.items()]
    lines.append(f"\n  {'filter':<24} {'removed':>9} {'remaining':>10}")
    lines += [
        f"  {step['filter']:<24} {step['removed']:>9,} {step['remaining']:>10,}" for step in steps
    ]
    return "\n".join(lines)


def run_make_fixture(args: argparse.Namespace) -> int:
    """Build ``imdb_crop/imdb.mat`` and crops with real face detections."""
    from lookalike.fixtures import make_imdb_fixture

    require_at_least_one(max_people=args.max_people, max_photos=args.max_photos)
    mat = make_imdb_fixture(
        args.people_dir,
        args.out or config.sample_dir(),
        people_csv=args.people_csv,
        max_people=args.max_people,
        max_photos_per_person=args.max_photos,
        seed=args.seed,
        quality=args.quality,
        overwrite=args.overwrite,
    )
    print(mat)
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download (and by default extract) one IMDB-WIKI archive."""
    from lookalike.download import download_dataset

    default = config.data_dir() / "wiki" if args.dataset == "wiki" else config.imdb_dir()
    # Network or archive trouble raises DownloadError, a LookalikeError: one line for the user.
    result = download_dataset(
        args.dataset, args.dest or default, base_url=args.base_url, extract=not args.no_extract
    )
    print(result)
    return 0
