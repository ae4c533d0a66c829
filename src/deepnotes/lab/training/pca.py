"""C46: PCA components are uncorrelated and ordered by explained variance (주성분 분석).

PCA by hand: centre the data, eigendecompose its covariance, sort by eigenvalue. The
projections onto the components should have a diagonal covariance (uncorrelated) whose
diagonal falls (ordered); scikit-learn's PCA serves as the oracle for the variances.
"""

from __future__ import annotations

import numpy as np

from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import lab_data, new_figure, rounded, save_figure


def pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(components (k, d) as rows, explained variances (k,), mean (d,)), largest first."""
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False)  # (d, d), unbiased like sklearn's explained_variance_
    values, vectors = np.linalg.eigh(cov)  # ascending
    order = np.argsort(values)[::-1]
    return vectors[:, order].T, values[order], mean


def judge_c46(numbers: dict) -> tuple[str, str]:
    """Holds if the projections onto the directions are uncorrelated (largest off-diagonal correlation
    below 1e-6) and their variances never rise from one direction to the next."""
    uncorrelated = numbers["max_abs_offdiag_correlation"] < 1e-6
    ordered = numbers["variances_descending"]
    if uncorrelated and ordered:
        return "holds", (
            f"the projections' largest correlation is {numbers['max_abs_offdiag_correlation']:.1e} and their "
            f"variances fall from {numbers['first_variances'][0]:.3g}; {numbers['components_for_90pct']} of "
            f"{numbers['dims']} components explain 90% of the variance"
        )
    what = [] if uncorrelated else ["the projections are correlated"]
    what += [] if ordered else ["the variances are not in decreasing order"]
    return "does not hold", "; ".join(what)


@experiment("C46", quick_verdict="holds", opposite={"directions": "random"})
def run_c46(ctx: Context, directions: str = "pca") -> Finding:
    """directions="pca" (the claim) or "random" (orthonormal random directions: opposite evidence)."""
    data = lab_data(ctx.quick, n_train=ctx.size(None, 10000), seed=ctx.seed)
    x = data.train_x.reshape(len(data.train_x), -1).double().numpy() / 255.0
    components, variances, mean = pca(x)
    if directions == "random":
        rng = np.random.default_rng(ctx.seed)
        q, _ = np.linalg.qr(rng.standard_normal((x.shape[1], x.shape[1])))
        components = q.T
    z = (x - mean) @ components.T  # (N, d) projections
    proj_var = z.var(axis=0, ddof=1)
    keep = proj_var > 1e-12 * proj_var.max()  # constant pixels give zero-variance directions
    corr = np.corrcoef(z[:, keep], rowvar=False)
    offdiag = np.abs(corr - np.diag(np.diag(corr))).max()
    ratio = proj_var / proj_var.sum()
    cumulative = np.cumsum(ratio)

    from sklearn.decomposition import PCA

    sk = PCA().fit(x)
    oracle_err = float(np.abs(sk.explained_variance_[:20] - variances[:20]).max() / variances[0])

    numbers = {
        "data": data.name,
        "samples": len(x),
        "dims": int(x.shape[1]),
        "max_abs_offdiag_correlation": float(offdiag),
        "variances_descending": bool(np.all(np.diff(proj_var[keep]) <= 1e-12 * proj_var.max())),
        "first_variances": rounded([float(v) for v in proj_var[:5]]),
        "components_for_90pct": int(np.searchsorted(cumulative, 0.9) + 1),
        "sklearn_relative_error": oracle_err,
        "directions": directions,
    }

    fig, axes = new_figure(3, 1, size=(4.2, 3.6))
    a = axes[0, 0]
    a.plot(np.arange(1, len(ratio) + 1), ratio, marker=".", label="per component")
    a.plot(np.arange(1, len(ratio) + 1), cumulative, label="cumulative")
    a.set(xlabel="component", ylabel="fraction of variance", title="explained variance", xscale="log")
    a.legend()
    a.grid(alpha=0.3)
    n = min(20, int(keep.sum()))
    im = axes[0, 1].imshow(np.abs(corr[:n, :n]), vmin=0, vmax=1, cmap="viridis")
    axes[0, 1].set_title(f"|correlation| of the first {n} projections")
    fig.colorbar(im, ax=axes[0, 1])
    side = int(round(np.sqrt(x.shape[1])))
    grid = np.concatenate([components[i].reshape(side, side) for i in range(4)], axis=1)
    axes[0, 2].imshow(grid, cmap="RdBu_r")
    axes[0, 2].set_title("first 4 directions")
    axes[0, 2].axis("off")
    figure = save_figure(fig, ctx.figure_path("pca"))
    verdict, reason = judge_c46(numbers)
    return Finding(numbers, [figure], verdict, reason)
