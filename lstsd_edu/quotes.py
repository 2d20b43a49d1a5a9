"""Numbers a chapter quotes in its text, printed by the code that produced them.

A chapter states its results in words ("LSTSD reaches 0.93 …"). So that the words cannot drift
from the outputs, the code cell that computes a number prints it with `quote`:

    quote(lstsd_acc=run.summary()["selected_test_acc"], ce_acc=...)
    # quoted: lstsd_acc = 0.9312
    # quoted: ce_acc = 0.8840

and the markdown writes the number followed by an invisible tag naming it:

    LSTSD reaches 0.931<!-- quote: lstsd_acc --> against CE's 0.884<!-- quote: ce_acc -->.

`tests/test_notebook_text.py` reads every committed (fully executed) chapter, finds each tagged
number and checks it against the printed value at the precision the text shows (a number written
with three decimals must equal the printed value rounded to three decimals; a percentage is
compared as a percentage). A minus sign may be written as the hyphen or as the typographic
minus, −.
"""

from __future__ import annotations

import math
import re

PREFIX = "quoted:"
LINE = re.compile(rf"^{PREFIX} ([A-Za-z_][\w]*) = (\S+)$", re.MULTILINE)
TAG = re.compile(r"([-−]?\d[\d,]*(?:\.\d+)?)(\s?%)?\s*<!--\s*quote:\s*([A-Za-z_]\w*)\s*-->")


def quote(**values: float) -> None:
    """Print each value as `quoted: name = value`, the line the text check reads."""
    for name, value in values.items():
        print(f"{PREFIX} {name} = {float(value):.6g}")


def printed(text: str) -> dict[str, float]:
    """The values `quote` printed in `text`."""
    return {name: float(value) for name, value in LINE.findall(text)}


def tagged(markdown: str) -> list[tuple[str, str, bool]]:
    """(number as written, name, is a percentage) for every tagged number in `markdown`."""
    return [(number, name, bool(percent)) for number, percent, name in TAG.findall(markdown)]


def agrees(written: str, value: float, percent: bool = False) -> bool:
    """Whether `written` is `value` at the precision it is written with."""
    number = float(written.replace(",", "").replace("−", "-"))
    value = value * 100 if percent else value
    decimals = len(written.split(".")[1]) if "." in written else 0
    return math.isclose(round(value, decimals), number, abs_tol=0.5 * 10**-decimals + 1e-12)
