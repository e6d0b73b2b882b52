"""Team level: how much pipeline does one more unit of weekly activity go with? (issue #4, part 4)

A Poisson panel regression (quasi-likelihood: valid under overdispersion) of weekly
outcomes on the rep's activity this week and the ``max_lag`` weeks before, with rep and
week fixed effects, plus next week's activity as a *lead* term (a check for reverse
causality: if pipeline drives activity, future activity "predicts" today's pipeline).

Few-cluster inference by the wild cluster *restricted* score bootstrap by rep (Kline &
Santos 2012; Roodman, MacKinnon, Nielsen & Webb 2019), Webb six-point weights below 12 reps
(Rademacher above). p-values impose the null; intervals invert the same test (every value of
the coefficient it does not reject, each one imposed by a refit), so a p-value under alpha
and an interval that leaves out 0 agree. Under ``MIN_REPS_FOR_INTERVAL`` reps the intervals
do not hold their level (``benchmarks/team_effects_coverage.py``): the function then says so
(``attrs["interval_valid"]``, ``attrs["interval_note"]``) instead of giving a range.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

#: fewest reps with pipeline for an interval or p-value: below it the 95% intervals covered the
#: truth too rarely in ``benchmarks/team_effects_coverage.py`` (5 reps 87-90%, 6 reps 90-93%;
#: 7 and 8 reps about 93%, 12-40 about 95%: benchmarks/NOTES.md)
MIN_REPS_FOR_INTERVAL = 8

ASSUMPTIONS = (
    "Association, not proof of cause: estimates compare each rep with themself over time (rep fixed "
    "effects) after removing what the whole team went through each week (week fixed effects). "
    "Assumes (1) the effect of activity on new opportunities is multiplicative and the same for every "
    "rep, spread over the current and the next {max_lag} weeks; (2) nothing else that moves pipeline "
    "changed in step with a rep's activity (territory, leads, seasonality specific to one rep); "
    "(3) pipeline does not drive activity -- checked by the lead term, which should be near zero; "
    "(4) reps are independent of one another given the week effects (inference clusters by rep, "
    "with a wild cluster bootstrap: in simulated teams its 95% ranges held the true value about 93% "
    f"of the time with {MIN_REPS_FOR_INTERVAL} reps and 95% with 12 or more; a team under "
    f"{MIN_REPS_FOR_INTERVAL} reps gets no range). Counts may "
    "be overdispersed (Poisson quasi-likelihood)."
)

#: why a team gets no interval, in plain words (``{n_reps}``: the reps the model rests on)
TOO_FEW_REPS = ("Only {n_reps} reps with new pipeline: too few reps to put a reliable range on this "
                "(the model's ranges hold from " + str(MIN_REPS_FOR_INTERVAL) + " reps).")

_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


def _long_design(activity_panel: pd.DataFrame, outcome_panel: pd.DataFrame, max_lag: int, lead: bool):
    """Stack the weekly panels into one row per (rep, week) with lagged and lead activity.

    Takes the activity and outcome panels (counts per week, reps in both). Rows with a missing
    lag, lead or outcome are dropped, and so are reps and weeks without any outcome event.
    Returns (rows with columns ``lag0`` .. ``lagK`` [, ``lead1``], ``y``, ``rep``, ``week``;
    the names of the activity columns).
    """
    reps = [c for c in outcome_panel.columns if c in activity_panel.columns]
    act = activity_panel[reps].astype(float)
    out = outcome_panel[reps].astype(float).reindex(act.index)
    cols = {f"lag{k}": act.shift(k) for k in range(max_lag + 1)}
    if lead:
        cols["lead1"] = act.shift(-1)
    frames = []
    for r in reps:
        f = pd.DataFrame({name: panel[r] for name, panel in cols.items()})
        f["y"] = out[r]
        f["rep"] = r
        f["week"] = act.index
        frames.append(f)
    long = pd.concat(frames, ignore_index=True).dropna()
    # a rep (or week) with no events at all has a fixed effect of minus infinity: leave it out
    long = long[long.groupby("rep")["y"].transform("sum") > 0]
    long = long[long.groupby("week")["y"].transform("sum") > 0]
    names = list(cols)
    return long, names


class _Panel(NamedTuple):
    """The panel model's data: activity terms, outcome, and each row's rep and week.

    The design it stands for is ``[Z, rep dummies, week dummies but the first]``; the fixed
    effects are never spelt out as dummies (:func:`_fe_poisson_fit` works on the sums they
    stand for), so a fit costs about as much at 40 reps x 52 weeks as at 5 x 26.
    """

    Z: np.ndarray  # (n, k) activity terms (lags, lead)
    y: np.ndarray  # (n,) outcome counts
    rep: np.ndarray  # (n,) rep code 0..G-1
    week: np.ndarray  # (n,) week code 0..T-1
    G: int
    T: int


def _xb(panel: _Panel, Z: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``X @ coef`` for the design ``[Z, rep dummies, week dummies but the first]``; ``coef`` (p,) or (p, m)."""
    k = Z.shape[1]
    week_fe = np.concatenate([np.zeros((1,) + coef.shape[1:]), coef[k + panel.G:]])  # first week: 0
    return Z @ coef[:k] + coef[k:k + panel.G][panel.rep] + week_fe[panel.week]


def _xtv(panel: _Panel, Z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``X.T @ v`` for the design ``[Z, rep dummies, week dummies but the first]``; ``v`` (n,) or (n, m)."""
    by_rep = _cluster_sum(v, panel.rep, panel.G)
    by_week = _cluster_sum(v, panel.week, panel.T)[1:]
    return np.concatenate([Z.T @ v, by_rep, by_week])


def _fe_hessian(panel: _Panel, Z: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``X.T @ diag(mu) @ X`` for the design ``[Z, rep dummies, week dummies but the first]``."""
    k, G, T = Z.shape[1], panel.G, panel.T
    Zm = Z * mu[:, None]
    zr = _cluster_sum(Zm, panel.rep, G)  # (G, k)
    zw = _cluster_sum(Zm, panel.week, T)[1:]  # (T-1, k)
    rw = _rep_by_week(panel, mu)
    H = np.zeros((k + G + T - 1,) * 2)
    H[:k, :k] = Z.T @ Zm
    H[:k, k:k + G], H[:k, k + G:] = zr.T, zw.T
    H[k:k + G, :k], H[k + G:, :k] = zr, zw
    H[k:k + G, k:k + G] = np.diag(rw.sum(axis=1))
    H[k + G:, k + G:] = np.diag(rw.sum(axis=0)[1:])
    H[k:k + G, k + G:] = rw[:, 1:]
    H[k + G:, k:k + G] = rw[:, 1:].T
    return H


def _fe_poisson_fit(panel: _Panel, Z: np.ndarray, offset: np.ndarray | float = 0.0,
                    start: np.ndarray | None = None, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Poisson maximum likelihood of ``y`` on ``[Z, rep and week fixed effects]`` by Newton-Raphson.

    Parameters
    ----------
    panel : _Panel
        Outcome and the rep and week of each row (its ``Z`` is not used: pass the terms as ``Z``).
    Z : ndarray (n, k)
        The terms besides the fixed effects (the activity terms, or a restricted version of them).
    offset : ndarray (n,) or float
        Added to the linear predictor (a coefficient held fixed under a null, log exposure).
    start : ndarray, optional
        Starting coefficients (a nearby fit: a refit under a nearby null takes 2-4 steps).
    iters : int
        Most Newton steps; stops when no coefficient moves by 1e-9.

    Returns
    -------
    coef : ndarray (k + G + T - 1,)
        The ``Z`` coefficients, then the rep effects (the level), then the week effects against
        the first week; equal to statsmodels' ``GLM(y, [Z, dummies], family=Poisson())``
        (``tests/test_team_effects.py``).
    mu : ndarray (n,)
        Fitted means.
    """
    y, k = panel.y, Z.shape[1]
    if start is None:  # rep level and week shape of the counts: a start the first step can't overshoot
        rep_mean = _cluster_sum(y, panel.rep, panel.G) / np.bincount(panel.rep, minlength=panel.G)
        week_mean = _cluster_sum(y, panel.week, panel.T) / np.bincount(panel.week, minlength=panel.T)
        week_fe = np.log(np.maximum(week_mean, 1e-3) / max(week_mean[0], 1e-3))
        start = np.concatenate([np.zeros(k), np.log(np.maximum(rep_mean, 1e-3)), week_fe[1:]])
    coef = start.copy()
    for _ in range(iters):
        mu = np.exp(np.clip(_xb(panel, Z, coef) + offset, -30, 30))
        step = _solve(_fe_hessian(panel, Z, mu), _xtv(panel, Z, y - mu))
        coef = coef + step
        if np.max(np.abs(step)) < 1e-9:
            break
    mu = np.exp(np.clip(_xb(panel, Z, coef) + offset, -30, 30))
    return coef, mu


def _solve(H: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``H^-1 b``, least squares when ``H`` is singular (a term that never varies)."""
    try:
        return np.linalg.solve(H, b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(H, b, rcond=None)[0]


def _cluster_sum(M: np.ndarray, codes: np.ndarray, G: int) -> np.ndarray:
    """Sum the rows of ``M`` within clusters (``codes``: each row's cluster, 0..G-1) -> (G, columns)."""
    if M.ndim == 1:
        return np.bincount(codes, weights=M, minlength=G)
    return np.column_stack([np.bincount(codes, weights=col, minlength=G) for col in M.T]) if M.shape[1] \
        else np.zeros((G, 0))


def _weights(rng: np.random.Generator, B: int, G: int) -> np.ndarray:
    """Wild bootstrap weights, B draws x G clusters: Webb's six-point weights under 12 clusters
    (Rademacher's two points give too few distinct draws there), else Rademacher."""
    if G < 12:
        return _WEBB[rng.integers(0, 6, size=(B, G))]
    return rng.choice([-1.0, 1.0], size=(B, G))


def _panel(long: pd.DataFrame, names: list[str]) -> _Panel:
    """The :class:`_Panel` of the long rows of :func:`_long_design`.

    Raises ValueError under 3 reps (no cluster inference possible).
    """
    reps = pd.Categorical(long["rep"])
    weeks = pd.Categorical(long["week"])
    if len(reps.categories) < 3:
        raise ValueError("team_activity_effect needs at least 3 reps with pipeline")
    return _Panel(long[names].to_numpy(float), long["y"].to_numpy(float), reps.codes.astype(int),
                  weeks.codes.astype(int), len(reps.categories), len(weeks.categories))


def team_activity_effect(activity_panel: pd.DataFrame, outcome_panel: pd.DataFrame, max_lag: int = 4, *,
                         lead: bool = True, alpha: float = 0.05, n_boot: int = 999, seed: int = 0,
                         p_values: bool | tuple = True, intervals: bool | tuple = True,
                         min_reps: int | None = None) -> pd.DataFrame:
    """Distributed-lag effect of weekly activity on weekly pipeline, team level.

    Parameters
    ----------
    activity_panel, outcome_panel : DataFrame
        Weekly panels (index = week Timestamps, columns = rep_id): activity count and outcome
        count (e.g. opportunities created) per rep per week.
    max_lag : int
        Activity in the current week and the ``max_lag`` weeks before enters the model.
    lead : bool
        Add next week's activity as a reverse-causality check.
    alpha : float
        Intervals are (1 - alpha).
    n_boot : int
        Wild cluster bootstrap draws.
    seed : int
        Seed of the bootstrap (results are deterministic).
    p_values : bool or tuple of str
        Compute the WCR p-values (one restricted refit per term). ``False`` leaves
        ``p_value`` NaN. A tuple of kinds (``"lag"``, ``"lead"``, ``"total"``) computes only
        those terms' p-values (the team overview shows the total and the lead).
    intervals : bool or tuple of str
        Compute the intervals (each one inverts the restricted bootstrap test: about 20
        restricted refits). A tuple of kinds, as for ``p_values``, computes only those
        (the scenarios and the overview read only the total's); the others are NaN.
    min_reps : int, optional
        Fewest reps for intervals and p-values (default: ``MIN_REPS_FOR_INTERVAL`` as it is at
        the call, from where they held their level); lower only to study what they would be below it.

    Returns
    -------
    DataFrame
        One row per term: ``term`` ("lag 0" .. "lag K", "lead 1", "total (lags 0-K)"),
        ``lag`` (weeks; -1 for the lead, NaN for the total), ``coef`` (change in log weekly
        rate per extra unit of activity a week), ``rate_ratio_per_unit`` (exp(coef)),
        ``ci_low``, ``ci_high`` (on the rate-ratio scale), ``p_value``, ``interval_valid``
        (True where ``ci_low``/``ci_high`` hold a range that can be read; else they are NaN).
        ``attrs``: ``assumptions`` (plain text), ``n_reps``, ``n_weeks``, ``n_obs``, ``weights``,
        ``interval_valid`` (False when the team is too small for any interval or p-value:
        under ``min_reps`` reps, both are NaN then) and ``interval_note`` (why
        not, in plain words; "" when valid).
    """
    long, names = _long_design(activity_panel, outcome_panel, max_lag, lead)
    panel = _panel(long, names)
    G, K, n_lags = panel.G, len(names), max_lag + 1
    wts = _weights(np.random.default_rng(seed), n_boot, G)
    contrasts = np.zeros((K + 1, K))  # each term, then the total = sum of the lag terms
    contrasts[:K, :K] = np.eye(K)
    contrasts[K, :n_lags] = 1.0
    beta, mu = _fe_poisson_fit(panel, panel.Z)
    est, se = contrasts @ beta[:K], _cluster_se(panel, beta, mu, contrasts)

    kinds = [("lead" if n.startswith("lead") else "lag") for n in names] + ["total"]
    valid = G >= (MIN_REPS_FOR_INTERVAL if min_reps is None else min_reps)
    lo, hi, pvals = np.full(K + 1, np.nan), np.full(K + 1, np.nan), np.full(K + 1, np.nan)
    for j in (j for j in range(K + 1) if valid and _wanted(kinds[j], p_values)):
        pvals[j] = _wcr_p_value(panel, beta, j, K, n_lags, wts)
    for j in (j for j in range(K + 1) if valid and _wanted(kinds[j], intervals)):
        lo[j], hi[j] = _wcr_interval(panel, beta, j, K, n_lags, wts, alpha, est[j], se[j])
    readable = np.isfinite(lo) & np.isfinite(hi)
    lo[~readable], hi[~readable] = np.nan, np.nan  # a range open at one end is not shown as one

    terms = [f"lag {k}" for k in range(n_lags)] + (["lead 1"] if lead else []) + [f"total (lags 0-{max_lag})"]
    lags = list(range(n_lags)) + ([-1] if lead else []) + [np.nan]
    df = pd.DataFrame({"term": terms, "lag": lags, "coef": est, "rate_ratio_per_unit": np.exp(est),
                       "ci_low": np.exp(lo), "ci_high": np.exp(hi), "p_value": pvals, "interval_valid": readable})
    df.attrs.update(assumptions=ASSUMPTIONS.format(max_lag=max_lag), n_reps=G,
                    n_weeks=panel.T, n_obs=len(panel.y), weights="Webb" if G < 12 else "Rademacher",
                    interval_valid=valid, interval_note="" if valid else TOO_FEW_REPS.format(n_reps=G))
    return df


def _wanted(kind: str, which: bool | tuple) -> bool:
    """Whether a term of ``kind`` is asked for by ``which`` (True: all, False: none, or a tuple of kinds)."""
    return bool(which) if isinstance(which, bool) else kind in which


def _cluster_se(panel: _Panel, beta: np.ndarray, mu: np.ndarray, contrasts: np.ndarray) -> np.ndarray:
    """Cluster-robust (CR0) standard errors of ``contrasts @ beta[:k]`` at the unrestricted fit.

    Only a scale: it sets where :func:`_wcr_interval` starts looking for the interval's ends.
    """
    k = panel.Z.shape[1]
    full = np.zeros((len(beta), len(contrasts)))
    full[:k] = contrasts.T
    direction = _xb(panel, panel.Z, _solve(_fe_hessian(panel, panel.Z, mu), full))  # (n, contrasts)
    u = _cluster_sum(direction * (panel.y - mu)[:, None], panel.rep, panel.G)  # each rep's influence
    return np.sqrt(np.sum(u**2, axis=0))


def _restricted_terms(Z: np.ndarray, j: int, K: int, n_lags: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Reparametrize the activity terms so that reported coefficient ``j`` is one coordinate.

    ``j < K``: term ``j`` itself; ``j == K``: the total of the ``n_lags`` lag terms (with
    ``beta_0 = total - sum of the other lags``, lag 0's column carries the total and lags
    1..K enter as ``x_k - x_0``). Returns (the other terms, the tested term's column, the
    index of the coefficient dropped from the unrestricted ones).
    """
    k0 = j if j < K else 0
    others = np.delete(Z, k0, axis=1)
    if j == K:
        others[:, :n_lags - 1] -= Z[:, [0]]
    return others, Z[:, k0], k0


def _score_test(panel: _Panel, others: np.ndarray, x_test: np.ndarray, theta: float, wts: np.ndarray,
                start: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Restricted score statistic of "the tested coefficient is ``theta``" and its wild bootstrap draws.

    Refits the model with the tested coefficient held at ``theta`` (an offset), projects the
    tested column on the other terms (weighted by the fitted means), and sums the scores by
    rep. Each bootstrap draw flips the sign of (Webb: scales) each rep's residuals and takes
    one Newton step of the restricted model on them, so that its rep scores -- and the
    statistic's denominator -- shrink as the observed ones do when the rep and week effects
    are fitted (:func:`_bootstrap_score_map`). Returns (observed t, the ``len(wts)`` bootstrap
    t's, the restricted fit's coefficients: a start for a refit at a nearby ``theta``).
    """
    coef, mu = _fe_poisson_fit(panel, others, offset=theta * x_test, start=start)
    H = _fe_hessian(panel, others, mu)
    x_tilde = x_test - _xb(panel, others, _solve(H, _xtv(panel, others, x_test * mu)))
    resid = panel.y - mu
    s = _cluster_sum(x_tilde * resid, panel.rep, panel.G)
    t_obs = s.sum() / math.sqrt(max(np.sum(s**2), 1e-300))
    M = _bootstrap_score_map(panel, others, H, x_tilde * mu, resid, s)
    s_b = wts @ M.T  # (B, G): each draw's rep scores after the one-step refit
    t_b = s_b.sum(axis=1) / np.sqrt(np.maximum(np.sum(s_b**2, axis=1), 1e-300))
    return t_obs, t_b, coef


def _bootstrap_score_map(panel: _Panel, others: np.ndarray, H: np.ndarray, x_tilde_mu: np.ndarray,
                         resid: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The (G, G) matrix ``M`` with a bootstrap draw's rep scores ``M @ w`` for rep weights ``w``.

    The draw's residuals are ``w[rep] * resid``; one Newton step of the restricted model (Hessian
    ``H``) on them takes out ``mu * X_r H^-1 X_r' (w[rep] * resid)``, so rep g's score is
    ``w_g s_g - C_g H^-1 S w`` with ``C_g = X_r,g' (x_tilde * mu)_g`` and ``S``'s column h
    ``X_r,h' resid_h``. ``M @ 1 = s``: the observed scores are the draw with every weight 1
    (``X_r' resid = 0`` at the restricted fit).
    """
    C = _by_rep(panel, others, x_tilde_mu)  # (G, p)
    S = _by_rep(panel, others, resid)  # (G, p)
    return np.diag(s) - C @ _solve(H, S.T)


def _rep_by_week(panel: _Panel, v: np.ndarray) -> np.ndarray:
    """``v`` summed by rep and week -> (G, T) (one row a rep-week: the cell's value, 0 where none)."""
    cells = np.bincount(panel.rep * panel.T + panel.week, weights=v, minlength=panel.G * panel.T)
    return cells.reshape(panel.G, panel.T)


def _by_rep(panel: _Panel, Z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each rep's ``X_g.T @ v_g`` for the design ``[Z, rep dummies, week dummies but the first]`` -> (G, p)."""
    G = panel.G
    per_week = _rep_by_week(panel, v)
    return np.column_stack([_cluster_sum(Z * v[:, None], panel.rep, G), np.diag(per_week.sum(axis=1)),
                            per_week[:, 1:]])


def _wcr_p_value(panel: _Panel, beta: np.ndarray, j: int, K: int, n_lags: int, wts: np.ndarray) -> float:
    """Wild cluster restricted (WCR) score-test p-value of reported coefficient ``j`` being 0.

    ``j < K``: one term; ``j == K``: the total of the ``n_lags`` lag terms. Imposes the null by
    refitting with that contrast fixed at 0, then bootstraps the score of the left-out
    direction with the weights ``wts`` (draws x reps).
    """
    others, x_test, k0 = _restricted_terms(panel.Z, j, K, n_lags)
    t_obs, t_b, _ = _score_test(panel, others, x_test, 0.0, wts, np.delete(beta, k0))
    return (1 + np.sum(np.abs(t_b) >= abs(t_obs))) / (len(wts) + 1)


def _wcr_interval(panel: _Panel, beta: np.ndarray, j: int, K: int, n_lags: int, wts: np.ndarray, alpha: float,
                  est: float, se: float) -> tuple[float, float]:
    """(1 - alpha) interval of reported coefficient ``j``: every value the WCR test does not reject.

    Each end is where the observed restricted score t meets the bootstrap's (1 - alpha)
    quantile of |t| (Roodman et al. 2019, "Fast and wild"): looked for outward from the
    estimate in steps that double from 2 cluster-robust standard errors, then narrowed down by
    false position (:func:`_boundary`). An end not found within 2^9 standard errors is infinite (the data don't bound it).
    """
    others, x_test, k0 = _restricted_terms(panel.Z, j, K, n_lags)
    last = {"coef": np.delete(beta, k0)}  # each refit starts from the one before: a nearby theta
    scale = se if np.isfinite(se) and se > 0 else max(abs(est), 1e-3)

    def distance(theta: float) -> float:  # > 0: theta is rejected at alpha
        t_obs, t_b, last["coef"] = _score_test(panel, others, x_test, theta, wts, last["coef"])
        return abs(t_obs) - float(np.quantile(np.abs(t_b), 1 - alpha))

    ends = []
    for sign in (-1.0, 1.0):
        last["coef"] = np.delete(beta, k0)
        inner, d_inner, step, end = est, distance(est), 2.0 * scale, sign * math.inf
        while step <= 512 * scale:
            outer = est + sign * step
            d_outer = distance(outer)
            if d_outer > 0:
                end = _boundary(distance, inner, min(d_inner, 0.0), outer, d_outer, 1e-3 * scale)
                break
            inner, d_inner, step = outer, d_outer, 2 * step
        ends.append(end)
    return ends[0], ends[1]


def _boundary(f, kept: float, f_kept: float, rejected: float, f_rejected: float, xtol: float) -> float:
    """Where ``f`` turns positive between ``kept`` (``f <= 0``) and ``rejected`` (``f > 0``).

    False position with the Illinois correction: it keeps the two ends on their sides whatever
    ``f`` does in between (with few reps the bootstrap quantile moves in steps, and the observed
    statistic is one of the draws, so ``f`` can touch 0 over a stretch). Returns the rejected
    end once the two are within ``xtol``: an interval errs on the wide side by less than that.
    """
    side = 0
    for _ in range(60):
        if abs(rejected - kept) <= xtol:
            break
        c = rejected - f_rejected * (rejected - kept) / (f_rejected - f_kept)
        if not min(kept, rejected) < c < max(kept, rejected):
            c = (kept + rejected) / 2
        f_c = f(c)
        if f_c > 0:
            rejected, f_rejected = c, f_c
            f_kept, side = (f_kept / 2 if side == 1 else f_kept), 1
        else:
            kept, f_kept = c, f_c
            f_rejected, side = (f_rejected / 2 if side == -1 else f_rejected), -1
    return rejected
