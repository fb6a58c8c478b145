"""SGD, Adam, AdamW, Adagrad, RMSprop, Adadelta, Adamax, NAdam, RAdam with PyTorch's update rules.

Each ``_update(p, g, group, state)`` receives the parameter Tensor, its gradient as a
backend array (already negated for ``maximize``) and updates ``p.array`` in place.
Comments give the rule in PyTorch's notation; the code mirrors PyTorch's
single-tensor implementation operation by operation so trajectories agree to
float64 rounding.
"""
from __future__ import annotations

import numbers

import numpy

from .optimizer import Optimizer


def _check(name, value, low=0.0, what="value"):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {name} {what}: {value!r} (must be a number)")
    if not value >= low:
        raise ValueError(f"Invalid {name} {what}: {value}")


def _as_tuple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else v


def _check_flags(group, *names):
    for n in names:
        if not isinstance(group[n], (bool, numpy.bool_)):
            raise TypeError(f"Invalid {n} value: {group[n]!r} (must be a bool)")


class SGD(Optimizer):
    """d = g + wd*p; b = d (first step) or momentum*b + (1 - dampening)*d;
    d = d + momentum*b (nesterov) or b; p -= lr*d."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False, fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)  # add_param_group runs _check_group

    _state_spec = {"momentum_buffer": "buffer?"}  # created on the first step if missing

    @staticmethod
    def _check_group(g):
        _check("learning rate", g["lr"])
        _check("momentum", g["momentum"])
        _check("dampening", g["dampening"], float("-inf"))
        _check("weight_decay", g["weight_decay"])
        _check_flags(g, "nesterov", "maximize")
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, p, g, group, state):
        momentum = group["momentum"]
        buf, first = None, False
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = self._zeros(p)
                state["momentum_buffer"] = buf
                first = True
        p.backend.sgd_step_(p.array, g, None if buf is None else buf.array, group["lr"], momentum,
                            group["dampening"], group["weight_decay"], group["nesterov"], first)


class Adam(Optimizer):
    """m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
    p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
    ``weight_decay`` adds wd*p to g (L2); AdamW decays p by (1 - lr*wd) instead."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        defaults = dict(lr=lr, betas=_as_tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)  # add_param_group runs _check_group

    _state_spec = {"step": "count", "exp_avg": "buffer", "exp_avg_sq": "buffer",
                   "max_exp_avg_sq": "buffer"}

    def _required_state(self, group):
        return ("step", "exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    @staticmethod
    def _check_group(g):
        _check_adam_like(g)
        _check_flags(g, "amsgrad", "maximize")

    def _update(self, p, g, group, state):
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = self._zeros(p)
            state["exp_avg_sq"] = self._zeros(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = self._zeros(p)
        state["step"] += 1
        b1, b2 = group["betas"]
        lr, wd, eps, step = group["lr"], group["weight_decay"], group["eps"], state["step"]
        if not group["amsgrad"]:
            p.backend.adam_step_(p.array, g, state["exp_avg"].array, state["exp_avg_sq"].array,
                                 lr, b1, b2, eps, wd, step, self._decoupled)
            return
        be, pa = p.backend, p.array
        m, v, vmax = state["exp_avg"].array, state["exp_avg_sq"].array, state["max_exp_avg_sq"].array
        if wd:
            if self._decoupled:
                be.copyto_(pa, be.binary("mul", pa, 1 - lr * wd))
            else:
                g = be.binary("add", g, be.binary("mul", pa, wd))
        be.copyto_(m, be.binary("add", be.binary("mul", m, b1), be.binary("mul", g, 1 - b1)))
        be.copyto_(v, be.binary("add", be.binary("mul", v, b2),
                                be.binary("mul", be.binary("mul", g, g), 1 - b2)))
        be.copyto_(vmax, be.binary("maximum", vmax, v))
        bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
        denom = be.binary("add", be.binary("div", be.unary("sqrt", vmax), bc2 ** 0.5), eps)
        be.copyto_(pa, be.binary("sub", pa, be.binary("mul", be.binary("div", m, denom), lr / bc1)))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr*wd first."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, **kw):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kw)


class Adagrad(Optimizer):
    """s += g^2; p -= lr/(1 + (t-1)*lr_decay) * g / (sqrt(s) + eps)."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, *, maximize=False, foreach=None, differentiable=False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize)
        super().__init__(params, defaults)  # add_param_group runs _check_group

    _state_spec = {"step": "count", "sum": "buffer"}

    @staticmethod
    def _check_group(g):
        _check("learning rate", g["lr"])
        _check("lr_decay", g["lr_decay"])
        _check("weight_decay", g["weight_decay"])
        _check("initial_accumulator_value", g["initial_accumulator_value"])
        _check("epsilon", g["eps"])
        _check_flags(g, "maximize")

    def _update(self, p, g, group, state):
        be, pa = p.backend, p.array
        if "step" not in state:
            state["step"] = 0
            s = self._zeros(p)
            if group["initial_accumulator_value"]:
                be.copyto_(s.array, be.full((), group["initial_accumulator_value"], p.dtype))
            state["sum"] = s
        state["step"] += 1
        if group["weight_decay"]:
            g = be.binary("add", g, be.binary("mul", pa, group["weight_decay"]))
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"].array
        be.copyto_(s, be.binary("add", s, be.binary("mul", g, g)))
        std = be.binary("add", be.unary("sqrt", s), group["eps"])
        be.copyto_(pa, be.binary("sub", pa, be.binary("mul", be.binary("div", g, std), clr)))


class RMSprop(Optimizer):
    """a = alpha*a + (1-alpha)*g^2 (centered: minus the squared running mean of g);
    with momentum b = momentum*b + g/(sqrt(a)+eps), p -= lr*b; else p -= lr*g/(sqrt(a)+eps)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False, foreach=None, differentiable=False, capturable=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)  # add_param_group runs _check_group

    _state_spec = {"step": "count", "square_avg": "buffer", "momentum_buffer": "buffer",
                   "grad_avg": "buffer"}

    def _required_state(self, group):
        return (("step", "square_avg") + (("momentum_buffer",) if group["momentum"] > 0 else ())
                + (("grad_avg",) if group["centered"] else ()))

    @staticmethod
    def _check_group(g):
        _check("learning rate", g["lr"])
        _check("epsilon", g["eps"])
        _check("momentum", g["momentum"])
        _check("weight_decay", g["weight_decay"])
        _check("alpha", g["alpha"])
        _check_flags(g, "centered", "maximize")

    def _update(self, p, g, group, state):
        be, pa = p.backend, p.array
        if "step" not in state:
            state["step"] = 0
            state["square_avg"] = self._zeros(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = self._zeros(p)
            if group["centered"]:
                state["grad_avg"] = self._zeros(p)
        state["step"] += 1
        alpha, lr, eps = group["alpha"], group["lr"], group["eps"]
        if group["weight_decay"]:
            g = be.binary("add", g, be.binary("mul", pa, group["weight_decay"]))
        sq = state["square_avg"].array
        be.copyto_(sq, be.binary("add", be.binary("mul", sq, alpha),
                                 be.binary("mul", be.binary("mul", g, g), 1 - alpha)))
        if group["centered"]:
            ga = state["grad_avg"].array
            be.copyto_(ga, be.binary("add", ga, be.binary("mul", be.binary("sub", g, ga), 1 - alpha)))
            avg = be.unary("sqrt", be.binary("sub", sq, be.binary("mul", ga, ga)))
        else:
            avg = be.unary("sqrt", sq)
        avg = be.binary("add", avg, eps)
        if group["momentum"] > 0:
            buf = state["momentum_buffer"].array
            be.copyto_(buf, be.binary("add", be.binary("mul", buf, group["momentum"]),
                                      be.binary("div", g, avg)))
            be.copyto_(pa, be.binary("sub", pa, be.binary("mul", buf, lr)))
        else:
            be.copyto_(pa, be.binary("sub", pa, be.binary("mul", be.binary("div", g, avg), lr)))


class Adadelta(Optimizer):
    """a = rho*a + (1-rho)*g^2; d = sqrt(u+eps)/sqrt(a+eps)*g; u = rho*u + (1-rho)*d^2; p -= lr*d."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize=False,
                 foreach=None, capturable=False, differentiable=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)  # add_param_group runs _check_group

    _state_spec = {"step": "count", "square_avg": "buffer", "acc_delta": "buffer"}

    @staticmethod
    def _check_group(g):
        _check("learning rate", g["lr"])
        _check("rho", g["rho"])
        if not g["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {g['rho']}")
        _check("epsilon", g["eps"])
        _check("weight_decay", g["weight_decay"])
        _check_flags(g, "maximize")

    def _update(self, p, g, group, state):
        be, pa = p.backend, p.array
        if "step" not in state:
            state["step"] = 0
            state["square_avg"] = self._zeros(p)
            state["acc_delta"] = self._zeros(p)
        state["step"] += 1
        rho, eps = group["rho"], group["eps"]
        if group["weight_decay"]:
            g = be.binary("add", g, be.binary("mul", pa, group["weight_decay"]))
        sq, acc = state["square_avg"].array, state["acc_delta"].array
        be.copyto_(sq, be.binary("add", be.binary("mul", sq, rho),
                                 be.binary("mul", be.binary("mul", g, g), 1 - rho)))
        std = be.unary("sqrt", be.binary("add", sq, eps))
        delta = be.unary("sqrt", be.binary("add", acc, eps))
        delta = be.binary("mul", be.binary("div", delta, std), g)
        be.copyto_(acc, be.binary("add", be.binary("mul", acc, rho),
                                  be.binary("mul", be.binary("mul", delta, delta), 1 - rho)))
        be.copyto_(pa, be.binary("sub", pa, be.binary("mul", delta, group["lr"])))


def _check_betas(betas):
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"Invalid beta parameters: {betas!r}; expected a pair (beta1, beta2)")
    for b in betas:
        _check("beta parameter", b)
    if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameters: {betas}; both must be in [0, 1)")


def _check_adam_like(g):
    _check("learning rate", g["lr"])
    _check("epsilon", g["eps"])
    _check_betas(g["betas"])
    _check("weight_decay", g["weight_decay"])


def _weight_decay(be, pa, g, lr, wd, decoupled):
    """PyTorch's two weight decays: decoupled (AdamW-style) shrinks the parameter in
    place, p *= 1 - lr*wd; else L2, which adds wd*p to the gradient. Returns the
    gradient to use."""
    if not wd:
        return g
    if decoupled:
        be.copyto_(pa, be.binary("mul", pa, 1 - lr * wd))
        return g
    return be.binary("add", g, be.binary("mul", pa, wd))


def _lerp_(be, m, g, w):
    """m += w * (g - m) in place (PyTorch's ``lerp_``)."""
    be.copyto_(m, be.binary("add", m, be.binary("mul", be.binary("sub", g, m), w)))


class Adamax(Optimizer):
    """m = lerp(m, g, 1-b1); u = max(b2*u, |g| + eps); p -= lr/(1-b1^t) * m / u."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        defaults = dict(lr=lr, betas=_as_tuple(betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)  # add_param_group runs _check_group

    _state_spec = {"step": "count", "exp_avg": "buffer", "exp_inf": "buffer"}

    @staticmethod
    def _check_group(g):
        _check_adam_like(g)
        _check_flags(g, "maximize")

    def _update(self, p, g, group, state):
        be, pa = p.backend, p.array
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = self._zeros(p)
            state["exp_inf"] = self._zeros(p)
        state["step"] += 1
        b1, b2 = group["betas"]
        if group["weight_decay"]:
            g = be.binary("add", g, be.binary("mul", pa, group["weight_decay"]))
        m, u = state["exp_avg"].array, state["exp_inf"].array
        _lerp_(be, m, g, 1 - b1)
        be.copyto_(u, be.binary("maximum", be.binary("mul", u, b2),
                                be.binary("add", be.unary("abs", g), group["eps"])))
        clr = group["lr"] / (1 - b1 ** state["step"])
        be.copyto_(pa, be.binary("sub", pa, be.binary("mul", be.binary("div", m, u), clr)))


class NAdam(Optimizer):
    """Adam with Nesterov momentum and momentum decay (Dozat), PyTorch's rule:
    mu_t = b1*(1 - 0.5*0.96^(t*psi)); p -= lr*(1-mu_t)/(1-prod mu) * g/denom
    + lr*mu_{t+1}/(1-prod mu * mu_{t+1}) * m/denom, denom = sqrt(v/(1-b2^t)) + eps."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        defaults = dict(lr=lr, betas=_as_tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)  # add_param_group runs _check_group

    _state_spec = {"step": "count", "mu_product": "scalar", "exp_avg": "buffer",
                   "exp_avg_sq": "buffer"}

    @staticmethod
    def _check_group(g):
        _check_adam_like(g)
        _check("momentum_decay", g["momentum_decay"])
        _check_flags(g, "decoupled_weight_decay", "maximize")

    def _update(self, p, g, group, state):
        be, pa = p.backend, p.array
        if "step" not in state:
            state["step"] = 0
            state["mu_product"] = 1.0
            state["exp_avg"] = self._zeros(p)
            state["exp_avg_sq"] = self._zeros(p)
        state["step"] += 1
        step, lr, wd = state["step"], group["lr"], group["weight_decay"]
        b1, b2 = group["betas"]
        psi = group["momentum_decay"]
        bc2 = 1 - b2 ** step
        g = _weight_decay(be, pa, g, lr, wd, group["decoupled_weight_decay"])
        mu = b1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
        mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
        # PyTorch keeps mu_product in a float32 scalar tensor: round as it does, so the
        # trajectories agree to float64 rounding
        state["mu_product"] = float(numpy.float32(numpy.float32(state["mu_product"]) * numpy.float32(mu)))
        mu_prod = state["mu_product"]
        m, v = state["exp_avg"].array, state["exp_avg_sq"].array
        _lerp_(be, m, g, 1 - b1)
        be.copyto_(v, be.binary("add", be.binary("mul", v, b2),
                                be.binary("mul", be.binary("mul", g, g), 1 - b2)))
        denom = be.binary("add", be.unary("sqrt", be.binary("div", v, bc2)), group["eps"])
        be.copyto_(pa, be.binary("add", pa, be.binary("mul", be.binary("div", g, denom),
                                                      -lr * (1.0 - mu) / (1.0 - mu_prod))))
        be.copyto_(pa, be.binary("add", pa, be.binary("mul", be.binary("div", m, denom),
                                                      -lr * mu_next / (1.0 - mu_prod * mu_next))))


class RAdam(Optimizer):
    """Rectified Adam (Liu et al.), PyTorch's rule: Adam's step scaled by the variance
    rectification term once the SMA length rho_t exceeds 5, else an SGD-with-momentum step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        defaults = dict(lr=lr, betas=_as_tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)  # add_param_group runs _check_group

    _state_spec = {"step": "count", "exp_avg": "buffer", "exp_avg_sq": "buffer"}

    @staticmethod
    def _check_group(g):
        _check_adam_like(g)
        _check_flags(g, "decoupled_weight_decay", "maximize")

    def _update(self, p, g, group, state):
        be, pa = p.backend, p.array
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = self._zeros(p)
            state["exp_avg_sq"] = self._zeros(p)
        state["step"] += 1
        step, lr, wd = state["step"], group["lr"], group["weight_decay"]
        b1, b2 = group["betas"]
        g = _weight_decay(be, pa, g, lr, wd, group["decoupled_weight_decay"])
        m, v = state["exp_avg"].array, state["exp_avg_sq"].array
        _lerp_(be, m, g, 1 - b1)
        be.copyto_(v, be.binary("add", be.binary("mul", v, b2),
                                be.binary("mul", be.binary("mul", g, g), 1 - b2)))
        bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
        mhat = be.binary("div", m, bc1)
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * step * (b2 ** step) / bc2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = be.binary("div", bc2 ** 0.5, be.binary("add", be.unary("sqrt", v), group["eps"]))
            upd = be.binary("mul", be.binary("mul", be.binary("mul", mhat, lr), adaptive), rect)
        else:
            upd = be.binary("mul", mhat, lr)
        be.copyto_(pa, be.binary("sub", pa, upd))
