"""Figure notebooks: run them headless, check their figures, share them.

    dandihub notebooks run [NAME ...] [--archive URL | --demo] [--out DIR] [--param K=V]
    dandihub notebooks link REPO_URL PATH --hub URL [--branch B]

``run`` executes each notebook of ``notebooks/`` with papermill against one archive,
keeps the executed notebook and its figures (PNG) in ``--out``, and compares every
figure with its reference in ``notebooks/figures/``. A figure whose difference exceeds
the tolerance fails, and an image showing reference | new | difference is saved.

A notebook tells the runner what it did in ``{figure_dir}/{name}.json``: its
provenance, its figures, or why it skipped (e.g. real data absent).

Figures are compared after a light blur (so sub-pixel anti-aliasing and font hinting do
not count) by two numbers: the mean absolute difference (0-255) and the fraction of
pixels that changed by more than a quarter of the range. Either over its limit fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlparse

# Where the repository keeps its notebooks (an editable install of the hub package).
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
MEAN_TOLERANCE = 1.0  # mean |difference| in 0-255 levels after the blur
CHANGED_TOLERANCE = 0.0005  # fraction of pixels changed by > CHANGED_LEVEL after the blur (~a word)
CHANGED_LEVEL = 64
NOTEBOOK_TIMEOUT = 900  # seconds: one notebook, whole run (a cell timeout too)


# --------------------------------------------------------------------------------------
# Figure comparison
# --------------------------------------------------------------------------------------


@dataclass
class FigureCheck:
    name: str
    ok: bool
    message: str
    mean_diff: float | None = None
    changed: float | None = None
    diff_image: Path | None = None


def _load(path: Path):
    import numpy as np
    from PIL import Image, ImageFilter

    image = Image.open(path).convert("RGB")
    blurred = image.filter(ImageFilter.GaussianBlur(1))
    return image, np.asarray(blurred, dtype=np.int16)


def compare_figure(actual: Path, reference: Path, diff_dir: Path | None = None,
                   mean_tolerance: float = MEAN_TOLERANCE,
                   changed_tolerance: float = CHANGED_TOLERANCE) -> FigureCheck:
    """Compare ``actual`` with ``reference``; on failure save ``{name}-diff.png`` in diff_dir."""
    import numpy as np

    name = actual.name
    if not reference.exists():
        return FigureCheck(name, False, f"no reference figure {reference} "
                           "(run with --update-references to create it)")
    new_image, new = _load(actual)
    ref_image, ref = _load(reference)
    resized = new.shape != ref.shape
    if resized:  # a size change is a change; compare what can be compared and show it
        from PIL import Image, ImageFilter

        new_image = new_image.resize(ref_image.size, Image.Resampling.LANCZOS)
        new = np.asarray(new_image.filter(ImageFilter.GaussianBlur(1)), dtype=np.int16)
    delta = np.abs(new - ref)
    mean_diff = float(delta.mean())
    changed = float((delta.max(axis=2) > CHANGED_LEVEL).mean())
    ok = not resized and mean_diff <= mean_tolerance and changed <= changed_tolerance
    message = (f"mean |diff| {mean_diff:.3f}/255 (limit {mean_tolerance}), "
               f"changed pixels {changed:.4%} (limit {changed_tolerance:.2%})")
    if resized:
        message = f"size {new_image.size} was {ref_image.size}; " + message
    check = FigureCheck(name, ok, message, mean_diff, changed)
    if not ok and diff_dir is not None:
        check.diff_image = save_diff_image(ref_image, new_image, delta, diff_dir / f"{actual.stem}-diff.png")
    return check


def save_diff_image(reference, actual, delta, path: Path) -> Path:
    """reference | new | difference (changed pixels in red over a faded reference)."""
    import numpy as np
    from PIL import Image

    base = np.asarray(reference.convert("L"), dtype=np.float32)
    faded = 255 - (255 - base) * 0.3
    strength = np.clip(delta.max(axis=2) * 4, 0, 255).astype(np.float32) / 255
    diff = np.stack([faded * (1 - strength) + 255 * strength,
                     faded * (1 - strength), faded * (1 - strength)], axis=2)
    diff_image = Image.fromarray(diff.astype(np.uint8))
    width, height = reference.size
    sheet = Image.new("RGB", (width * 3, height), "white")
    for i, part in enumerate((reference.convert("RGB"), actual.convert("RGB"), diff_image)):
        sheet.paste(part, (i * width, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


# --------------------------------------------------------------------------------------
# Running notebooks
# --------------------------------------------------------------------------------------


@dataclass
class NotebookRun:
    name: str
    seconds: float
    executed: Path
    report: dict = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    checks: list[FigureCheck] = field(default_factory=list)
    error: str | None = None

    @property
    def skipped(self) -> str | None:
        return self.report.get("skipped")

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)


def find_notebooks(names: list[str] | None = None, folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The figure notebooks (``NN-name.ipynb``), all or those matching ``names``
    (a number, a name, or a file name)."""
    found = sorted(folder.glob("[0-9][0-9]-*.ipynb"))
    if not found:
        raise SystemExit(f"No figure notebooks (NN-name.ipynb) in {folder}")
    if not names:
        return found
    chosen = []
    for name in names:
        stem = Path(name).stem
        matches = [p for p in found if p.stem == stem or p.stem.split("-", 1)[0] == stem.zfill(2)
                   or p.stem.split("-", 1)[1] == stem]
        if not matches:
            raise SystemExit(f"No notebook {name!r} in {folder}; there are: "
                             + ", ".join(p.stem for p in found))
        chosen += matches
    return chosen


def run_notebook(path: Path, out_dir: Path, *, archive_url: str | None = None,
                 parameters: dict | None = None, references: Path | None = None,
                 diff_dir: Path | None = None, update_references: bool = False,
                 timeout: float = NOTEBOOK_TIMEOUT) -> NotebookRun:
    """Execute one notebook with papermill and check its figures against ``references``."""
    import papermill

    name = path.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(exist_ok=True)
    report_file = figure_dir / f"{name}.json"
    report_file.unlink(missing_ok=True)
    for old in figure_dir.glob(f"{name}*.png"):
        old.unlink()
    params = {"figure_dir": str(figure_dir), **(parameters or {})}
    if archive_url:
        params["archive_url"] = archive_url
    executed = out_dir / path.name
    run = NotebookRun(name, 0.0, executed)
    start = time.monotonic()
    try:
        papermill.execute_notebook(
            str(path), str(executed), parameters=params, cwd=str(path.parent),
            kernel_name="python3", progress_bar=False, execution_timeout=timeout,
            start_timeout=120,
        )
    except (papermill.PapermillExecutionError, TimeoutError, RuntimeError) as e:
        # papermill's error names the cell; keep its last lines (timeouts, dead kernels too)
        run.error = f"{type(e).__name__}: " + "\n".join(str(e).strip().splitlines()[-12:])
    run.seconds = time.monotonic() - start
    if report_file.exists():
        run.report = json.loads(report_file.read_text())
    elif run.error is None:
        run.error = f"{name} wrote no report ({report_file.name}): it must call its save step"
    run.figures = sorted(figure_dir.glob(f"{name}*.png"))
    if run.error or run.skipped or references is None:
        return run
    if update_references:
        references.mkdir(parents=True, exist_ok=True)
        for figure in run.figures:
            (references / figure.name).write_bytes(figure.read_bytes())
    expected = {p.name for p in references.glob(f"{name}*.png")} | {f.name for f in run.figures}
    for figure_name in sorted(expected):
        actual = figure_dir / figure_name
        if not actual.exists():
            run.checks.append(FigureCheck(figure_name, False, "the notebook no longer makes it"))
            continue
        run.checks.append(compare_figure(actual, references / figure_name, diff_dir))
    return run


def summary(run: NotebookRun) -> str:
    head = f"{run.name}: {run.seconds:.1f} s"
    if run.error:
        return f"{head}  FAILED\n    {run.error}"
    if run.skipped:
        return f"{head}  skipped: {run.skipped}"
    lines = [f"{head}  {'ok' if run.ok else 'FIGURE CHANGED'}"]
    for check in run.checks:
        lines.append(f"    {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.message}")
        if check.diff_image:
            lines.append(f"         diff: {check.diff_image}")
    return "\n".join(lines)


def parse_parameters(items: list[str]) -> dict:
    """``K=V`` pairs; V is read as JSON when it parses (numbers, lists, null), else a string."""
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param {item!r}: expected NAME=VALUE")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def run_command(args) -> int:
    import contextlib

    notebooks = find_notebooks(args.names, Path(args.notebooks))
    references = Path(args.notebooks) / "figures"
    out = Path(args.out).resolve()
    diff_dir = Path(args.diff_dir).resolve() if args.diff_dir else out / "diffs"
    with contextlib.ExitStack() as stack:
        archive_url = args.archive or os.environ.get("DANDI_API_URL")
        if args.demo:
            from .cli import prepare_demo_archive
            from .localarchive.server import LocalArchive

            folder = Path(args.demo_dir)
            print(f"Preparing the demo archive in {folder} (the first time takes minutes)...",
                  flush=True)
            prepare_demo_archive(folder)
            archive_url = stack.enter_context(LocalArchive(folder)).api_url
        print(f"Archive: {archive_url or 'the public DANDI archive'}", flush=True)
        failed = 0
        for path in notebooks:
            print(f"Running {path.name}...", flush=True)
            run = run_notebook(path, out, archive_url=archive_url,
                               parameters=parse_parameters(args.param), references=references,
                               diff_dir=diff_dir, update_references=args.update_references,
                               timeout=args.timeout)
            print(summary(run), flush=True)
            failed += not run.ok
    print(f"Executed notebooks and figures: {out}")
    return 1 if failed else 0


# --------------------------------------------------------------------------------------
# "Open in DANDI Hub" links
# --------------------------------------------------------------------------------------


def open_link(repo_url: str, path: str, hub_url: str, branch: str | None = None,
              app: str = "lab") -> str:
    """An nbgitpuller link: the hub clones (or updates) ``repo_url`` into the user's home,
    then opens ``path`` in JupyterLab. ``/hub/user-redirect/`` sends any signed-in user
    to their own server (spawning it first when needed)."""
    parsed = urlparse(repo_url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise ValueError(f"{repo_url!r} is not the http(s) URL of a public git repository")
    hub = urlparse(hub_url)
    if hub.scheme not in ("https", "http") or not hub.netloc:
        raise ValueError(f"{hub_url!r} is not the URL of a hub (https://hub.example.org)")
    # nbgitpuller clones into a folder named after the repository
    folder = parsed.path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    target = f"{folder}/{path.lstrip('/')}"
    query = {"repo": repo_url}
    if branch:
        query["branch"] = branch
    query["urlpath"] = f"{app}/tree/{target}"
    return f"{hub_url.rstrip('/')}/hub/user-redirect/git-pull?{urlencode(query)}"


def link_command(args) -> int:
    try:
        print(open_link(args.repo_url, args.path, args.hub, args.branch))
    except ValueError as e:
        raise SystemExit(str(e)) from None
    return 0


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``dandihub notebooks run|link``."""
    import platformdirs

    sub = p.add_subparsers(dest="notebooks_command", required=True)
    r = sub.add_parser("run", help="execute figure notebooks and compare their figures")
    r.add_argument("names", nargs="*", help="notebooks to run (number or name; default all)")
    source = r.add_mutually_exclusive_group()
    source.add_argument("--archive", metavar="URL",
                        help="archive API root (default $DANDI_API_URL, else the public archive)")
    source.add_argument("--demo", action="store_true",
                        help="start the local demo archive and run against it")
    r.add_argument("--demo-dir", default=str(Path(platformdirs.user_data_dir("dandihub"))
                                             / "demo-archive"),
                   help="demo archive folder (built if missing)")
    r.add_argument("--notebooks", default=str(NOTEBOOKS_DIR), help="folder of the notebooks")
    r.add_argument("--out", default="artifacts/notebooks",
                   help="executed notebooks, figures, diffs (default artifacts/notebooks)")
    r.add_argument("--diff-dir", help="where diff images go (default OUT/diffs)")
    r.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="papermill parameter for every notebook (repeatable)")
    r.add_argument("--update-references", action="store_true",
                   help="copy the new figures over the references (after reviewing them)")
    r.add_argument("--timeout", type=float, default=NOTEBOOK_TIMEOUT,
                   help="seconds a cell may run")
    r.set_defaults(func=run_command)
    k = sub.add_parser("link", help='print an "Open in DANDI Hub" (nbgitpuller) link')
    k.add_argument("repo_url", help="public git repository (https)")
    k.add_argument("path", help="notebook path inside the repository")
    k.add_argument("--hub", required=True, help="the hub's URL, e.g. https://hub.dandiarchive.org")
    k.add_argument("--branch", help="branch to check out (default: the repository's default)")
    k.set_defaults(func=link_command)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="dandihub notebooks")
    add_arguments(parser)
    arguments = parser.parse_args()
    sys.exit(arguments.func(arguments))
