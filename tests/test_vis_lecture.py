"""The lecture's remaining methods (gradflow.vis lecture tools and their examples),
each checked for what it claims on the bundled digits and a quickly trained LeNet-5
(the fixture shared with test_vis_examples)."""
from __future__ import annotations

import numpy as np
import pytest

from test_vis_examples import is_png, lenet, load_example, run  # noqa: F401


def test_example_contrast_norm(tmp_path):
    res = load_example("vis_contrast_norm").main(["--fast", "--out", str(tmp_path)])
    assert is_png(res["png"])
    spread = lambda c: max(c) / min(c)
    # the input's digits differ in contrast by ~16x; after LCN far less
    assert spread(res["contrast_in"]) > 10
    assert spread(res["contrast_out"]) < spread(res["contrast_in"]) / 3
    # the subtractive step alone removes the brightness ramp but keeps the contrast spread
    assert spread(res["contrast_sub"]) > spread(res["contrast_in"]) / 2
    assert np.isfinite(res["output"]).all()
