"""Float comparisons for the tests: a tolerance scaled to the magnitudes compared.

Another CPU's kernels (or another summation order) round float32 differently, and the
error of a float32 reduction is relative to the size of what it sums, not to each
output element: an element near zero in a vector of values around 0.2 carries an
absolute error of about 1e-5 however small the element is. Comparing element by element
with ``rtol`` fails such elements on some machines, so compare against the scale of the
whole array instead.
"""

from __future__ import annotations

import numpy as np


def assert_close_to_scale(actual, expected, rel: float = 1e-4) -> None:
    """Assert ``|actual - expected| <= rel * max|expected|`` for every element.

    Example:
        >>> assert_close_to_scale([0.2, 1.1e-5], [0.2, 0.9e-5])  # off by 2e-6 on a scale of 0.2
    """
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"shapes differ: {actual.shape} vs {expected.shape}"
    scale = float(np.max(np.abs(expected), initial=0.0))
    worst = float(np.max(np.abs(actual - expected), initial=0.0))
    assert worst <= rel * scale, (
        f"largest difference {worst:.3g} exceeds {rel:g} of the largest |expected| ({scale:.3g})"
    )
