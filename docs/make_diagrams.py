"""Regenerate the call-flow diagrams in docs/exploring.md (``make diagrams``).

Between ``<!-- explore: examples/NAME.py:FLOW -->`` and ``<!-- /explore -->`` goes what
``kaphila-flow explore examples/NAME.py:FLOW --print mermaid`` prints, in a Mermaid
block, with the exploration's summary. A test checks that the page is up to date.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path

from kaphila_flow.testing import Exploration, explore

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "exploring.md"
BLOCK = re.compile(r"(<!-- explore: (\S+) -->\n)(.*?)(<!-- /explore -->)", re.DOTALL)


def explore_target(target: str) -> Exploration:
    """``examples/ivr_menu.py:flow`` (from the repository's root), explored."""
    file, _, name = target.rpartition(":")
    spec = importlib.util.spec_from_file_location(Path(file).stem, ROOT / file)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return explore(getattr(module, name), name=target, **getattr(module, "DIAL_OPTIONS", {}))


def block(exploration: Exploration) -> str:
    return f"{exploration.summary()}.\n\n```mermaid\n{exploration.to_mermaid()}```\n"


def render(page: str, explorer: Callable[[str], Exploration] = explore_target) -> str:
    """``page`` with every marked block made anew."""
    return BLOCK.sub(lambda m: m.group(1) + block(explorer(m.group(2))) + m.group(4), page)


def main() -> None:
    page = PAGE.read_text(encoding="utf-8")
    new = render(page)
    if new != page:
        PAGE.write_text(new, encoding="utf-8")
        print(f"updated {PAGE.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
