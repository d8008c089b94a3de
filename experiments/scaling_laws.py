"""Scaling laws fitted to measured losses: the plan's power law, a law with an irreducible loss, error bars,
the compute-optimal size of an isoFLOP grid, and the two-variable law L(N, D).

Conventions (used everywhere in the scaling experiment):

- N is the number of **non-embedding** parameters, as in Kaplan et al. (2020): the token and position tables
  are left out (the head is tied to the token table, so it is left out with it).
- C = 6·N·D training FLOPs for D training tokens: a forward pass costs about 2 FLOPs per weight per token
  (a multiply and an add), the backward pass twice that. It leaves out the attention scores and the tied
  output layer; `tests/test_scaling.py` measures both against PyTorch's FLOP counter.
- Losses are per character, in nats (the training loss); bits per character are nats / ln 2.

The laws with an irreducible loss E are fitted as Hoffmann et al. (2022, "Chinchilla") did: a Huber loss
(delta 1e-3) on the difference of log losses, with log E and log A as the variables so that both stay
positive. Chinchilla started L-BFGS from a grid of points; here the start is the best point of a grid of
exponents, where the law is linear in E and A and is solved by least squares, and a gradient-based
optimiser (scipy's SLSQP, with bounds) takes it from there.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

HUBER_DELTA = 1e-3
BOOTSTRAP_RESAMPLES = 400


def training_flops(parameters: float, tokens: float) -> float:
    """C = 6·N·D: the FLOPs of training N non-embedding parameters on D tokens (see the module's docstring)."""
    return 6.0 * parameters * tokens


def bits(nats: float) -> float:
    return nats / math.log(2)


def r_squared(measured: np.ndarray, predicted: np.ndarray) -> float:
    """R² of log losses: the share of the spread of log L that the law explains."""
    log_l, log_p = np.log(measured), np.log(predicted)
    ss_tot = float(np.sum((log_l - log_l.mean()) ** 2))
    return 1.0 - float(np.sum((log_l - log_p) ** 2)) / ss_tot if ss_tot > 0 else 1.0


@dataclass
class PowerLaw:
    """The plan's L = a·N^-b: a straight line on log-log axes, with no floor."""

    a: float
    b: float
    r2: float

    def __call__(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.a * np.asarray(n, dtype=float) ** -self.b


def fit_power_law(n: list[float], loss: list[float]) -> PowerLaw:
    """Least squares in log-log space: log L = log a - b log N."""
    if len(set(n)) < 2:
        raise ValueError("A power law needs at least two sizes.")
    log_n, log_l = (
        np.log(np.asarray(n, dtype=float)),
        np.log(np.asarray(loss, dtype=float)),
    )
    slope, intercept = np.polyfit(log_n, log_l, 1)
    law = PowerLaw(float(np.exp(intercept)), float(-slope), 0.0)
    law.r2 = r_squared(np.exp(log_l), law(np.exp(log_n)))
    return law


@dataclass
class Law:
    """L(N) = E + A·N^-alpha: an irreducible loss E, and a part that shrinks as a power of size."""

    E: float
    A: float
    alpha: float

    def __call__(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.E + self.A * np.asarray(n, dtype=float) ** -self.alpha


@dataclass
class TwoVariableLaw:
    """Chinchilla's L(N, D) = E + A·N^-alpha + B·D^-beta: what size and what data each leave unexplained."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float

    def __call__(self, n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray | float:
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n**-self.alpha + self.B * d**-self.beta


def _profile_start(features: np.ndarray, loss: np.ndarray, exponent_grid: list[np.ndarray]) -> np.ndarray:
    """A starting point for the Huber fit: for each exponent(s) on a grid the law is linear in its coefficients
    (E, A[, B]), solved by least squares on relative errors; returns the best one's (log E, log A, alpha[, ...]).

    `features` holds log N (and log D) for each point, one row a variable. Starting from a fit to the whole
    grid keeps the Huber fit, which is nearly flat away from its optimum, from stopping where it started.
    """
    exponents = np.array(exponent_grid)  # (grid points, variables)
    powers = np.exp(-exponents[:, :, None] * features[None])  # (grid points, variables, points)
    design = np.concatenate([np.ones_like(powers[:, :1]), powers], axis=1) / loss  # (grid points, coefficients, points)
    normal = design @ design.transpose(0, 2, 1)  # least squares at every grid point at once
    coefficients = np.linalg.solve(normal, design.sum(axis=2)[..., None])[..., 0]
    error = np.sum((np.einsum("gc,gcp->gp", coefficients, design) - 1) ** 2, axis=1)
    error[np.any(coefficients <= 0, axis=1)] = np.inf
    if not np.isfinite(error.min()):  # no grid point gives positive coefficients: a small floor, mid-range exponents
        middle = exponents[len(exponents) // 2]
        return np.array([math.log(0.5 * loss.min()), *[x for e in middle for x in (0.0, e)]])
    best = int(np.argmin(error))
    coefficients, exponents = coefficients[best], exponents[best]
    x = [math.log(coefficients[0])]
    for c, e in zip(coefficients[1:], exponents):
        x += [math.log(c), float(e)]
    return np.array(x)


def _huber_fit(features: np.ndarray, loss: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Minimise the Huber loss between log L and log(E + sum of C_i·X_i^-e_i), X_i the rows of `features`
    (log N, log D), from `start` = (log E, log C_1, e_1, ...). The law is computed as a logsumexp of its
    terms' logs, which stays accurate when one term dwarfs the others."""
    log_loss = np.log(loss)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        terms = np.stack(
            [np.full_like(log_loss, x[0])] + [x[1 + 2 * i] - x[2 + 2 * i] * f for i, f in enumerate(features)]
        )
        residual = logsumexp(terms, axis=0) - log_loss
        # The gradient: each term's share of the law (a softmax of the logs) times the Huber loss's slope.
        slope = np.clip(residual, -HUBER_DELTA, HUBER_DELTA) * np.exp(terms - logsumexp(terms, axis=0))
        gradient = [slope[0].sum()]
        for i, f in enumerate(features):
            gradient += [slope[1 + i].sum(), -(slope[1 + i] * f).sum()]
        return float(np.sum(huber(HUBER_DELTA, residual))), np.array(gradient)

    bounds = [(-10.0, 3.0)] + [(-10.0, 30.0), (0.0, 3.0)] * len(features)
    # The objective is tiny near a good fit (residuals of a few thousandths): a tolerance far below scipy's default.
    # SLSQP finds the same optimum as L-BFGS-B (Chinchilla's choice) here, about 20 times faster.
    return minimize(
        objective,
        np.clip(start, *np.array(bounds).T),
        jac=True,
        method="SLSQP",
        bounds=bounds,
        options={"ftol": 1e-15, "maxiter": 500},
    ).x


EXPONENTS = np.arange(0.02, 2.0001, 0.02)  # the profile grid for alpha (and beta)


def fit_law(n: list[float], loss: list[float]) -> Law:
    """L = E + A·N^-alpha by Huber regression on log L (Chinchilla's method); needs three sizes or more."""
    if len(set(n)) < 3:
        raise ValueError(
            f"A law with an irreducible loss has three parameters: it needs three sizes, got {len(set(n))}."
        )
    features, loss = (
        np.log(np.asarray(n, dtype=float))[None],
        np.asarray(loss, dtype=float),
    )
    x = _huber_fit(
        features,
        loss,
        _profile_start(features, loss, [np.array([e]) for e in EXPONENTS]),
    )
    return Law(float(np.exp(x[0])), float(np.exp(x[1])), float(x[2]))


def fit_two_variable(n: list[float], d: list[float], loss: list[float]) -> TwoVariableLaw:
    """L = E + A·N^-alpha + B·D^-beta on runs that vary both size N and tokens D."""
    features = np.log(np.stack([np.asarray(n, dtype=float), np.asarray(d, dtype=float)]))
    loss = np.asarray(loss, dtype=float)
    grid = [np.array([a, b]) for a in EXPONENTS[::2] for b in EXPONENTS[::2]]
    x = _huber_fit(features, loss, _profile_start(features, loss, grid))
    return TwoVariableLaw(
        float(np.exp(x[0])),
        float(np.exp(x[1])),
        float(x[2]),
        float(np.exp(x[3])),
        float(x[4]),
    )


def bootstrap_laws(sizes: dict[float, list[float]], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[Law]:
    """Refit E + A·N^-alpha on resampled data, for confidence intervals.

    `sizes` maps each size N to its losses (one a seed). Each resample draws the sizes with replacement
    (the points), then each drawn size's seeds with replacement (the seeds); a draw with fewer than three
    distinct sizes cannot fix three parameters and is drawn again.
    """
    rng = np.random.default_rng(seed)
    n_all = list(sizes)
    laws = []
    while len(laws) < resamples:
        drawn = rng.choice(len(n_all), size=len(n_all), replace=True)
        if len(set(drawn)) < 3:
            continue
        n, loss = [], []
        for i in drawn:
            seeds = sizes[n_all[i]]
            for j in rng.choice(len(seeds), size=len(seeds), replace=True):
                n.append(n_all[i])
                loss.append(seeds[j])
        laws.append(fit_law(n, loss))
    return laws


def interval(values: list[float] | np.ndarray, level: float = 0.95) -> list[float]:
    """The central `level` share of `values` (percentiles 2.5 and 97.5 by default)."""
    tail = 100 * (1 - level) / 2
    return [
        float(np.percentile(values, tail)),
        float(np.percentile(values, 100 - tail)),
    ]


def law_with_intervals(sizes: dict[float, list[float]], resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """E, A, alpha fitted to every run, their bootstrap 95% intervals, R² of log L, and each size's residual
    (its mean loss over seeds minus the law's)."""
    n = [size for size, losses in sizes.items() for _ in losses]
    loss = [value for losses in sizes.values() for value in losses]
    law = fit_law(n, loss)
    laws = bootstrap_laws(sizes, resamples)
    ci = {name: interval([getattr(b, name) for b in laws]) for name in ("E", "A", "alpha")}
    residuals = [
        {"parameters": size, "measured": float(np.mean(losses)), "fitted": float(law(size))}
        for size, losses in sorted(sizes.items())
    ]
    return {**asdict(law), "ci": ci, "r2": r_squared(np.array(loss), law(np.array(n))), "residuals": residuals}


def predict_held_out(sizes: dict[float, list[float]], held_out: float, resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """Fit E + A·N^-alpha without the size `held_out`, then predict its loss, with the bootstrap's 95% interval.

    The interval is the fit's uncertainty at that size; the measured value is the mean over its seeds. The
    plan's power law, fitted on the same sizes, predicts too, for comparison.
    """
    seen = {n: losses for n, losses in sizes.items() if n != held_out}
    n_seen = [n for n, losses in seen.items() for _ in losses]
    loss_seen = [value for losses in seen.values() for value in losses]
    law, power = fit_law(n_seen, loss_seen), fit_power_law(n_seen, loss_seen)
    laws = bootstrap_laws(seen, resamples)
    measured = float(np.mean(sizes[held_out]))
    predicted = float(law(held_out))
    return {
        "law": asdict(law),
        "predicted": predicted,
        "interval": interval([float(b(held_out)) for b in laws]),
        "measured": measured,
        "error": measured - predicted,
        "relative_error": (measured - predicted) / measured,
        "power_law_predicted": float(power(held_out)),  # the plan's law, fitted on the same sizes, for comparison
    }


def local_parabola(n: list[float], loss: list[float]) -> np.ndarray | None:
    """Coefficients (in log N, highest power first) of the parabola through the best size and its two
    neighbours, with `n` in increasing order; None where the best size is the smallest or the largest."""
    best = int(np.argmin(loss))
    if best == 0 or best == len(loss) - 1:
        return None
    return np.polyfit(np.log(np.asarray(n[best - 1 : best + 2], dtype=float)), loss[best - 1 : best + 2], 2)


def isoflop_optimum(n: list[float], loss: list[float]) -> tuple[float, bool]:
    """The size with the lowest loss at one compute budget: the vertex of `local_parabola` (Chinchilla's
    second method, kept local because an isoFLOP curve is not symmetric far from its minimum). Returns
    (N_opt, interior); where the best size is the smallest or the largest trained, the optimum may lie beyond
    it: that size is returned with interior False."""
    order = np.argsort(n)
    n, loss = np.asarray(n, dtype=float)[order], np.asarray(loss, dtype=float)[order]
    coefficients = local_parabola(list(n), list(loss))
    if coefficients is None:
        return float(n[np.argmin(loss)]), False
    c2, c1, _ = coefficients
    return float(np.exp(-c1 / (2 * c2))), True


def fit_isoflop(budgets: dict[float, tuple[list[float], list[float]]]) -> dict:
    """Each budget's best size and tokens, and the exponents of N_opt ∝ C^a and D_opt ∝ C^b.

    `budgets` maps each budget C to the (sizes, losses) trained at it. Since D = C / 6N, a + b = 1 exactly:
    the two exponents are one measurement, reported both ways as the papers do.
    """
    rows = []
    for flops, (n, loss) in sorted(budgets.items()):
        best, interior = isoflop_optimum(n, loss)
        rows.append({"flops": flops, "best_parameters": best, "best_tokens": flops / (6 * best),
                     "interior": interior, "tokens_per_parameter": flops / (6 * best) / best})  # fmt: skip
    result: dict = {"budgets": rows, "a": None, "b": None}
    if len(rows) >= 2:
        log_c = np.log([r["flops"] for r in rows])
        result["a"] = float(np.polyfit(log_c, np.log([r["best_parameters"] for r in rows]), 1)[0])
        result["b"] = float(np.polyfit(log_c, np.log([r["best_tokens"] for r in rows]), 1)[0])
    return result
