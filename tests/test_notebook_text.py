"""The chapters' text matches their outputs: every number tagged in markdown
(`0.931<!-- quote: name -->`) equals, at the precision written, the value the chapter's own code
printed with `lstsd_edu.quotes.quote` in its committed, fully executed outputs."""

import re
from pathlib import Path

import nbformat
import pytest

from lstsd_edu.quotes import agrees, printed, tagged

CHAPTERS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output and "text/plain" in output["data"]:
                parts.append(output["data"]["text/plain"])
    return "\n".join(parts)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_tagged_numbers_match_the_printed_values(path):
    nb = nbformat.read(path, as_version=4)
    values = printed(outputs_text(nb))
    wrong = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        found = tagged(cell.source)
        for name in re.findall(r"<!--\s*quote:\s*(\w+)\s*-->", cell.source):
            if name not in [n for _, n, _ in found]:
                wrong.append(f"the tag {name!r} follows no number")
        for written, name, percent in found:
            if name not in values:
                wrong.append(f"{written} tagged {name!r}, which no output quotes")
            elif not agrees(written, values[name], percent):
                wrong.append(f"{written} tagged {name!r}, but the output says {values[name]:g}")
    assert not wrong, "; ".join(wrong)
