"""pyllmattr's numpy Lasso against scikit-learn's on ContextCite-shaped problems.

Random keep-half masks (32x40, 64x56, 128x70), a sparse linear response plus noise,
alpha=0.01 on standardized columns (the context-cite package's pipeline). Prints the
largest coefficient difference and the mean time per fit. Needs scikit-learn.

    python bench lasso_vs_sklearn
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from pyllmattr.methods.lasso import lasso


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    # scikit-learn is no dependency of the project: imported once asked for (not for --help).
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    warnings.simplefilter("ignore", ConvergenceWarning)  # float32 data limits its duality gap
    worst, t_numpy, t_sklearn, runs = 0.0, 0.0, 0.0, 30
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        n, d = [(32, 40), (64, 56), (128, 70)][seed % 3]
        x = rng.random((n, d)) < 0.5
        y = (-20 + x[:, :4] @ rng.normal(0, 3, 4) + 0.5 * rng.standard_normal(n)) / 8
        started = time.perf_counter()
        w, _ = lasso(x, y, 0.01)
        t_numpy += time.perf_counter() - started
        started = time.perf_counter()
        scaler = StandardScaler()
        model = Lasso(alpha=0.01, random_state=0, tol=1e-10, max_iter=100_000)
        make_pipeline(scaler, model).fit(x.astype(np.float32), y)
        t_sklearn += time.perf_counter() - started
        worst = max(worst, float(np.abs(model.coef_ / scaler.scale_ - w[:, 0]).max()))
    print(f"max |w_numpy - w_sklearn| = {worst:.2g}")
    ms = {name: t / runs * 1e3 for name, t in (("numpy", t_numpy), ("scikit-learn", t_sklearn))}
    print("mean fit: " + ", ".join(f"{name} {v:.0f} ms" for name, v in ms.items()))


if __name__ == "__main__":
    main()
