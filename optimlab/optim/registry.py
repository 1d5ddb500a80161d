"""The optimizers under the names the notes use, with their defaults and a one-line description.

``create("momentum:lr=0.05,momentum=0.9", params)`` or ``create("adam", params, lr=1e-3)``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from torch.optim import Optimizer

from ..spec import Spec, parse_bool, parse_spec


@dataclass(frozen=True)
class OptimizerEntry:
    name: str
    class_path: str  # "module:Class", imported on first use
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    needs_closure: bool = False

    @property
    def cls(self) -> type[Optimizer]:
        module, _, attr = self.class_path.partition(":")
        return getattr(importlib.import_module(module), attr)

    def accepted_arguments(self) -> list[str]:
        signature = inspect.signature(self.cls.__init__)
        return [p for p in signature.parameters if p not in ("self", "params")]

    def flag_arguments(self) -> set[str]:
        """Arguments that are flags (annotated bool, or with a bool default): true/false/1/0 only."""
        signature = inspect.signature(self.cls.__init__)
        return {p.name for p in signature.parameters.values()
                if isinstance(p.default, bool) or str(p.annotation).startswith("bool")}

    def optional_flags(self) -> set[str]:
        """Flags whose default is None (foreach, fused: torch chooses), where none is a value."""
        return {p.name for p in inspect.signature(self.cls.__init__).parameters.values()
                if p.default is None and str(p.annotation).startswith("bool")}

    def all_defaults(self) -> dict[str, Any]:
        """The class defaults overridden by this entry's defaults (what `create(name)` uses)."""
        signature = inspect.signature(self.cls.__init__)
        merged = {
            p.name: p.default for p in signature.parameters.values()
            if p.name not in ("self", "params", "foreach", "differentiable", "capturable")
            and p.default is not inspect.Parameter.empty
        }
        merged.update(self.defaults)
        return merged


# Sizes a spec may ask for (the classes keep torch's unbounded signatures): L-BFGS allocates a list
# of history_size entries per step, and max_iter/max_eval are loss evaluations per step.
SPEC_SIZE_LIMITS = {"history_size": 10_000, "max_iter": 10_000, "max_eval": 100_000}
# Any number in a spec: beyond this it overflows float32 state (Adagrad's initial accumulator
# 3.5e38 is a RuntimeError in torch.full_like) and means nothing as a hyperparameter.
MAX_SPEC_MAGNITUDE = 1e30

_ENTRIES = [
    OptimizerEntry("gd", "optimlab.optim.sgd:SGD", "gradient descent (use the full batch): w -= lr * g", {"lr": 0.1}),
    OptimizerEntry("sgd", "optimlab.optim.sgd:SGD", "stochastic / minibatch gradient descent: w -= lr * g", {"lr": 0.1}),
    OptimizerEntry("momentum", "optimlab.optim.sgd:SGD", "heavy-ball momentum: v = mu*v + g; w -= lr * v",
                   {"lr": 0.05, "momentum": 0.9}),
    OptimizerEntry("nesterov", "optimlab.optim.sgd:SGD", "Nesterov momentum: w -= lr * (g + mu*v)",
                   {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    OptimizerEntry("adagrad", "optimlab.optim.adaptive:Adagrad", "AdaGrad: step / sqrt(sum of squared gradients)",
                   {"lr": 0.1}),
    OptimizerEntry("rmsprop", "optimlab.optim.adaptive:RMSprop", "RMSProp: step / sqrt(leaky average of g^2)",
                   {"lr": 0.01, "alpha": 0.9}),
    OptimizerEntry("adam", "optimlab.optim.adaptive:Adam", "Adam: momentum + RMSProp with bias correction",
                   {"lr": 1e-3}),
    OptimizerEntry("adamw", "optimlab.optim.adaptive:AdamW", "AdamW: Adam with decoupled weight decay",
                   {"lr": 1e-3}),
    # beyond torch.optim (defaults: the reference implementations'; see docs/optimizers.md)
    OptimizerEntry("newton", "optimlab.optim.newton:Newton",
                   "Newton's method, exact Hessian: w -= lr * H^-1 g (saddle-free |H| where H is indefinite)",
                   {"lr": 1.0}, needs_closure=True),
    # one iteration per step() so that traces compare with the other optimizers step for step
    OptimizerEntry("lbfgs", "optimlab.optim.lbfgs:LBFGS",
                   "L-BFGS: quasi-Newton H^-1 g from the last m (s, y) pairs, strong-Wolfe line search",
                   {"lr": 1, "max_iter": 1, "max_eval": 25, "line_search_fn": "strong_wolfe"}, needs_closure=True),
]
# torch.optim's other classes (optimlab/optim/torch_classes.py), at torch's defaults unless noted
_ENTRIES += [
    OptimizerEntry("nadam", "optimlab.optim.torch_classes:NAdam",
                   "NAdam: Adam with Nesterov momentum, mu_t = beta1 (1 - 0.5 * 0.96^(t psi))", {"lr": 2e-3}),
    OptimizerEntry("radam", "optimlab.optim.torch_classes:RAdam",
                   "RAdam: Adam whose adaptive step is rectified (momentum SGD until rho_t > 5)", {"lr": 1e-3}),
    OptimizerEntry("adamax", "optimlab.optim.torch_classes:Adamax",
                   "AdaMax: Adam with the infinity norm, u = max(beta2 u, |g|)", {"lr": 2e-3}),
    OptimizerEntry("adadelta", "optimlab.optim.torch_classes:Adadelta",
                   "AdaDelta: step = RMS(past updates) / RMS(g) * g, no lr needed (lr=1)", {"lr": 1.0}),
    OptimizerEntry("adafactor", "optimlab.optim.torch_classes:Adafactor",
                   "Adafactor: factored second moment (rows x cols), relative step max(eps2, RMS(w)) * rho_t",
                   {"lr": 1e-2}),
    OptimizerEntry("asgd", "optimlab.optim.torch_classes:ASGD",
                   "ASGD: SGD with eta_t = lr / (1 + lambd lr t)^alpha; the Polyak average is state['ax'] "
                   "(evaluation sees w, not the average)", {"lr": 1e-2}),
    OptimizerEntry("rprop", "optimlab.optim.torch_classes:Rprop",
                   "Rprop: per-coordinate step sizes grown/shrunk by the sign of g_t g_{t-1} (full batch)",
                   {"lr": 1e-2}),
    OptimizerEntry("muon", "optimlab.optim.torch_classes:MuonAdamW",
                   "Muon: momentum orthogonalized by Newton-Schulz on 2-D weights; AdamW (adamw_lr) on all "
                   "non-matrix params, as torch documents (a landscape point is a vector: AdamW alone)",
                   {"lr": 0.02}),
]
# beyond torch (optimlab/optim/beyond.py, soap.py), each equal to its reference package
_ENTRIES += [
    OptimizerEntry("lion", "optimlab.optim.beyond:Lion", "Lion: w -= lr * sign(beta1*m + (1-beta1)*g); m = EMA of g",
                   {"lr": 1e-4}),
    OptimizerEntry("sf-adamw", "optimlab.optim.beyond:ScheduleFreeAdamW",
                   "Schedule-Free AdamW: Adam steps on z, evaluate the running average x (no lr schedule)",
                   {"lr": 0.0025}),
    OptimizerEntry("sf-sgd", "optimlab.optim.beyond:ScheduleFreeSGD",
                   "Schedule-Free SGD: SGD steps on z, evaluate the running average x (no lr schedule)", {"lr": 1.0}),
    OptimizerEntry("ademamix", "optimlab.optim.beyond:AdEMAMix",
                   "AdEMAMix: Adam with a fast and a slow momentum mixed, (m1_hat + alpha*m2) / sqrt(v_hat)",
                   {"lr": 1e-3}),
    OptimizerEntry("soap", "optimlab.optim.soap:SOAP",
                   "SOAP: Adam in the eigenbasis of Shampoo's preconditioner (1-D params: plain Adam)", {"lr": 3e-3}),
]
OPTIMIZERS: dict[str, OptimizerEntry] = {entry.name: entry for entry in _ENTRIES}


def get_entry(name: str) -> OptimizerEntry:
    try:
        return OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}") from None


def resolve(spec: str | Spec, **overrides: Any) -> tuple[OptimizerEntry, dict[str, Any]]:
    """The entry and the full keyword arguments (entry defaults < spec < overrides)."""
    parsed = parse_spec(spec, "optimizer spec") if isinstance(spec, str) else spec
    entry = get_entry(parsed.name)
    kwargs = {**entry.defaults, **parsed.kwargs, **overrides}
    allowed = entry.accepted_arguments()
    for key in kwargs:
        if key not in allowed:
            raise ValueError(f"unknown hyperparameter {key!r} for {entry.name}; allowed: {', '.join(allowed)}")
    for key, value in kwargs.items():
        numbers = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > MAX_SPEC_MAGNITUDE for v in numbers):
            raise ValueError(f"{key}={value!r} is too large: numbers in a spec must be within ±{MAX_SPEC_MAGNITUDE:g}")
    for key, limit in SPEC_SIZE_LIMITS.items():
        value = kwargs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
            raise ValueError(f"{key}={value!r} must be at most {limit} in a spec")
    optional = entry.optional_flags()
    for key in entry.flag_arguments() & set(kwargs):
        if kwargs[key] is None and key in optional:  # foreach=None / fused=None: torch's "choose for me"
            continue
        kwargs[key] = parse_bool(key, kwargs[key])
    return entry, kwargs


def create(spec: str | Spec, params: Any, **overrides: Any) -> Optimizer:
    """Build an optimizer from a name or spec string, e.g. ``create("adam:lr=1e-3", model.parameters())``."""
    entry, kwargs = resolve(spec, **overrides)
    wrong = _wrong_kind_message(entry, kwargs)  # torch checks some hyperparameters only at the step
    if wrong:
        raise ValueError(wrong)
    try:
        return entry.cls(params, **kwargs)
    except TypeError as error:  # torch's classes answer a value of the wrong kind with a TypeError
        raise ValueError(_wrong_kind_message(entry, kwargs) or f"{entry.name}: {error}") from None


def _wrong_kind_message(entry: OptimizerEntry, kwargs: dict[str, Any]) -> str | None:
    """Name the hyperparameter whose value is not of its default's kind (a pair, a number)."""
    defaults = entry.all_defaults()
    for key, value in kwargs.items():
        default = defaults.get(key)
        if default is None or isinstance(default, bool):
            continue
        pair_expected = isinstance(default, (tuple, list))
        number_expected = isinstance(default, (int, float))
        if pair_expected != isinstance(value, (tuple, list)) or (number_expected and isinstance(value, str)):
            kind = "a tuple" if pair_expected else "a number"
            return f"{key}={value!r} for {entry.name} must be {kind} (default {default!r})"
    return None
