"""``LBFGS``: limited-memory BFGS with an optional strong-Wolfe line search, with
``torch.optim.LBFGS``'s arguments, defaults and step-by-step behaviour.

The method (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.4 for the
two-loop recursion, Algorithms 3.5/3.6 for the line search and eq. 3.59 for the cubic
step) works on all parameters flattened into one vector. ``step(closure)`` runs up to
``max_iter`` iterations; ``closure()`` clears the gradients, computes the loss, calls
``backward()`` and returns the loss. The flat vectors are gradflow Tensors on the
parameters' backend, updated outside the graph; scalars (losses, step sizes, directional
derivatives) are Python floats.

The order of operations and every stopping test follow PyTorch's implementation so
that float64 trajectories agree to rounding; the state (``d``, ``t``, the curvature
pairs) lives in ``self.state`` under the first parameter, as PyTorch keeps it.
"""
from __future__ import annotations

from ..autograd import enable_grad, no_grad
from ..ops.shape import cat
from .optimizer import Optimizer


def _cubic_minimum(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clamped
    to ``bounds`` (default: the interval between x1 and x2); the interval's midpoint
    when the cubic has no real minimiser."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 ** 2 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = disc ** 0.5
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, lo), hi)


class _Point:
    """One trial of the line search: step ``t``, loss ``f``, flat gradient ``g`` and
    directional derivative ``gtd = g . d``."""
    __slots__ = ("t", "f", "g", "gtd")

    def __init__(self, t, f, g, gtd):
        self.t, self.f, self.g, self.gtd = t, f, g, gtd


def strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Find a step ``t`` along ``d`` meeting the strong Wolfe conditions
    ``f(t) <= f + c1 t gtd`` and ``|g(t) . d| <= c2 |gtd|``.

    ``evaluate(t) -> (loss, flat_grad)`` evaluates at ``x + t d`` (leaving x unchanged).
    Phase 1 grows the step until an interval is known to bracket an acceptable point,
    phase 2 ("zoom") shrinks that interval by safeguarded cubic interpolation.
    Returns ``(loss, flat_grad, t, evaluations)``."""
    d_norm = d.abs().max().item()
    start = _Point(0.0, f, g.clone(), gtd)
    prev = start
    f_new, g_new = evaluate(t)
    evals, ls_iter = 1, 0
    cur = _Point(t, f_new, g_new, g_new.dot(d).item())
    bracket, done = None, False
    while ls_iter < max_ls:
        if cur.f > f + c1 * cur.t * gtd or (ls_iter > 1 and cur.f >= prev.f):
            bracket = [prev, _Point(cur.t, cur.f, cur.g.clone(), cur.gtd)]
            break
        if abs(cur.gtd) <= -c2 * gtd:
            bracket, done = [cur], True
            break
        if cur.gtd >= 0:  # the slope turned: a minimiser lies between prev and cur
            bracket = [prev, _Point(cur.t, cur.f, cur.g.clone(), cur.gtd)]
            break
        # extrapolate: the cubic's minimiser, at least 1% beyond t and at most 10 t
        t_next = _cubic_minimum(prev.t, prev.f, prev.gtd, cur.t, cur.f, cur.gtd,
                                bounds=(cur.t + 0.01 * (cur.t - prev.t), cur.t * 10))
        prev = _Point(cur.t, cur.f, cur.g.clone(), cur.gtd)
        f_new, g_new = evaluate(t_next)
        evals += 1
        ls_iter += 1
        cur = _Point(t_next, f_new, g_new, g_new.dot(d).item())
    if bracket is None:  # ran out of evaluations while extrapolating
        bracket = [start, cur]

    # zoom: bracket[low] has the lower loss; the other end bounds the interval
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    insufficient = False
    while not done and ls_iter < max_ls:
        a, b = bracket
        if abs(b.t - a.t) * d_norm < tolerance_change:
            break
        t = _cubic_minimum(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        # keep the trial away from the ends: within 10% of one, move it in (unless the
        # last trial already made progress from an interior point)
        top, bottom = max(a.t, b.t), min(a.t, b.t)
        margin = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < margin:
            if insufficient or t >= top or t <= bottom:
                t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        f_new, g_new = evaluate(t)
        evals += 1
        ls_iter += 1
        trial = _Point(t, f_new, g_new.clone(), g_new.dot(d).item())
        if trial.f > f + c1 * t * gtd or trial.f >= bracket[low].f:
            bracket[high] = trial
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if abs(trial.gtd) <= -c2 * gtd:
                done = True
            elif trial.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = trial
    best = bracket[low]
    return best.f, best.g, best.t, evals


class LBFGS(Optimizer):
    """L-BFGS (``torch.optim.LBFGS``): ``opt.step(closure)`` with ``closure()`` returning
    the loss after ``backward()``.

    ``lr`` scales the step (the first iteration's step is ``min(1, 1/|g|_1) * lr``);
    ``max_iter`` iterations per ``step``, ``max_eval`` closure calls (default
    ``max_iter * 5 // 4``); stops early when ``max|g| <= tolerance_grad``, when the step
    or the loss change falls under ``tolerance_change``, or when the direction is not a
    descent direction; ``history_size`` curvature pairs; ``line_search_fn`` is None
    (fixed step ``lr``) or ``"strong_wolfe"``. One parameter group only, as PyTorch."""

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        if max_eval is None and isinstance(max_iter, int):
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    @staticmethod
    def _check_group(g):
        lr = g["lr"]
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0:
            raise ValueError(f"Invalid learning rate: {lr!r}")
        for name in ("max_iter", "max_eval", "history_size"):
            v = g[name]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"LBFGS: {name} must be a positive integer, got {v!r}")
        for name in ("tolerance_grad", "tolerance_change"):
            v = g[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"LBFGS: {name} must be a number >= 0, got {v!r}")
        if g["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{g['line_search_fn']!r}")

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # -- the parameters as one flat vector ---------------------------------------------------
    def _flat_grad(self):
        parts = []
        for p in self._params:
            if p.grad is None:
                parts.append(p.new_zeros(p.numel()))
            else:
                parts.append(p.grad.detach().reshape(-1).to(p.dtype))
        return cat(parts, 0)

    def _move(self, t, d):
        """Every parameter ``p += t * d[its slice]`` in place."""
        offset = 0
        for p in self._params:
            n = p.numel()
            p.add_(d[offset:offset + n].reshape(p.shape), alpha=t)
            offset += n

    def _evaluate_at(self, closure, t, d):
        """Loss and flat gradient at ``params + t d``; the parameters are put back."""
        saved = [p.detach().clone() for p in self._params]
        self._move(t, d)
        with enable_grad():
            loss = float(closure())
        g = self._flat_grad()
        for p, s in zip(self._params, saved):
            p.copy_(s)
        return loss, g

    def step(self, closure):
        """Run up to ``max_iter`` iterations; returns the loss of the first closure call."""
        if closure is None:
            raise RuntimeError("LBFGS.step requires a closure that re-evaluates the model and "
                               "returns the loss")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history = group["history_size"]
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        with no_grad():
            flat_grad = self._flat_grad()
            if flat_grad.abs().max().item() <= tol_grad:
                return orig_loss
            d, t = state.get("d"), state.get("t")
            old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
            h_diag = state.get("H_diag")
            prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1
                if state["n_iter"] == 1:
                    d = -flat_grad
                    old_dirs, old_stps, ro, h_diag = [], [], [], 1.0
                else:
                    d, h_diag = self._direction(flat_grad, prev_flat_grad, d, t, old_dirs,
                                                old_stps, ro, h_diag, history)
                prev_flat_grad = flat_grad.clone()
                prev_loss = loss
                if state["n_iter"] == 1:
                    t = min(1.0, 1.0 / flat_grad.abs().sum().item()) * lr
                else:
                    t = lr
                gtd = flat_grad.dot(d).item()
                if gtd > -tol_change:  # not a descent direction
                    break

                if group["line_search_fn"] == "strong_wolfe":
                    loss, flat_grad, t, ls_evals = strong_wolfe(
                        lambda step: self._evaluate_at(closure, step, d), t, d, loss, flat_grad,
                        gtd)
                    self._move(t, d)
                    converged = flat_grad.abs().max().item() <= tol_grad
                else:
                    self._move(t, d)
                    ls_evals, converged = 0, False
                    if n_iter != max_iter:  # the last iteration's loss is left to the caller
                        with enable_grad():
                            loss = float(closure())
                        flat_grad = self._flat_grad()
                        converged = flat_grad.abs().max().item() <= tol_grad
                        ls_evals = 1
                evals += ls_evals
                state["func_evals"] += ls_evals

                if n_iter == max_iter or evals >= max_eval or converged:
                    break
                if (d * t).abs().max().item() <= tol_change:
                    break
                if abs(loss - prev_loss) < tol_change:
                    break

            state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                         prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    @staticmethod
    def _direction(flat_grad, prev_flat_grad, d, t, old_dirs, old_stps, ro, h_diag, history):
        """Store the newest curvature pair (when ``y . s`` is positive enough) and return
        ``-H g`` by the two-loop recursion, with ``H0 = h_diag I``."""
        y = flat_grad - prev_flat_grad
        s = d * t
        ys = y.dot(s).item()
        if ys > 1e-10:
            if len(old_dirs) == history:
                old_dirs.pop(0)
                old_stps.pop(0)
                ro.pop(0)
            old_dirs.append(y)
            old_stps.append(s)
            ro.append(1.0 / ys)
            h_diag = ys / y.dot(y).item()
        q = -flat_grad
        alphas = [0.0] * len(old_dirs)
        for i in range(len(old_dirs) - 1, -1, -1):
            alphas[i] = old_stps[i].dot(q).item() * ro[i]
            q = q - old_dirs[i] * alphas[i]
        r = q * h_diag
        for i in range(len(old_dirs)):
            beta = old_dirs[i].dot(r).item() * ro[i]
            r = r + old_stps[i] * (alphas[i] - beta)
        return r, h_diag
