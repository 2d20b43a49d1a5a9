"""Training is what it was: every method's 12-epoch history against the committed reference.

The reference (`tests/reference/histories.csv`, written by `tests/reference/make_reference.py`)
holds each epoch's losses and accuracies to the last bit. On the platform it was recorded on (same
torch, same CPU vector instructions) they must match exactly; elsewhere float rounding may differ
in the last bits and grow over 12 epochs, so they must match closely.
"""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent / "reference"
SPEC = importlib.util.spec_from_file_location("make_reference", HERE / "make_reference.py")
make_reference = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(make_reference)


@pytest.fixture(scope="module")
def histories():
    return make_reference.histories()


def test_histories_match_the_committed_reference(histories):
    reference = pd.read_csv(HERE / "histories.csv")
    assert histories.case.tolist() == reference.case.tolist()
    same_platform = (HERE / "platform.txt").read_text().strip() == make_reference.platform_tag()
    for column in make_reference.COLUMNS:
        got, want = histories[column].to_numpy(), reference[column].to_numpy()
        if same_platform:
            mismatch = histories.case[got != want].unique().tolist()
            assert not mismatch, f"{column} differs from the reference for {mismatch}"
        else:
            pd.testing.assert_series_equal(
                histories[column], reference[column], check_exact=False, atol=0.03, rtol=0.05
            )
