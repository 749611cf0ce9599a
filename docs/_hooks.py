"""MkDocs hooks: pages may link the benchmark results kept outside ``docs/``.

``docs/performance.md`` links ``../benchmarks/results/latest.md`` and shows
``../benchmarks/results/scaling.png``: paths that work when the page is read in the
repository. For the site, those files are added under ``results/`` and the links point
there, so the strict build checks them like any other link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

OUTSIDE = "../benchmarks/results/"
INSIDE = "results/"


def on_files(files: Files, config: Any) -> Files:
    results = Path(config["config_file_path"]).parent / "benchmarks" / "results"
    for path in sorted(results.glob("*")):
        if path.suffix in (".md", ".png"):
            files.append(File.generated(config, f"{INSIDE}{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return markdown.replace(f"]({OUTSIDE}", f"]({INSIDE}")
