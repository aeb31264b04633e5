"""The loader's comparison against the harness's own summary.csv for a fresh run
(notebooks/test sets HARNESS_RUN to a `harness compare --repeat 3` folder): the same
pairs, ratios and verdicts; intervals alike up to the bootstrap's generator (at three
repeats Student's t decides both, so they agree to rounding)."""

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from csumbench_results import COMPARISON_FIELDS, METRICS, load

RUN = os.environ.get("HARNESS_RUN")


@pytest.mark.skipif(not RUN, reason="needs HARNESS_RUN, a fresh harness compare folder")
def test_the_loader_agrees_with_the_harness():
    folder = Path(RUN)
    harness = pd.read_csv(folder / "summary.csv", keep_default_na=False).set_index("strategy")
    ours = load(folder).summary().set_index("strategy")
    assert list(ours.index) == list(harness.index)
    for strategy, row in ours.iterrows():
        theirs = harness.loc[strategy]
        for metric in METRICS:
            for field in COMPARISON_FIELDS:
                key = f"{metric}_{field}"
                mine, other = row[key], theirs[key]
                if field in ("verdict", "pairs"):
                    assert str(mine) == str(other), (strategy, key)
                elif other == "":
                    assert math.isnan(mine), (strategy, key)
                else:
                    assert mine == pytest.approx(float(other), rel=1e-6), (strategy, key)
