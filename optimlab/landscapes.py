"""Analytic objectives with known minima: the notes' examples and the classic test functions.

Every landscape is a :class:`Landscape`: ``f(x)`` acts on tensors of shape ``(..., dim)`` (so a
whole grid evaluates in one call; gradients and Hessians come from autograd), with a default
start, a plotting domain and the known minima inside it. Parameterized landscapes take a spec
string, and any landscape takes ``noise=`` (std of Gaussian gradient noise)::

    get_landscape("rosenbrock")
    get_landscape("cosh:c=0.5")          # cosh(c*x)
    get_landscape("quadratic:kappa=100") # (x1^2 + kappa*x2^2)/2, condition number 100
    get_landscape("bowl:noise=1")        # D2L's SGD: grad of x1^2+2*x2^2 plus N(0, 1) noise

"minima" are the known local minima inside the plotting domain (``is_global``: the lowest of them); ``global_min`` is the lowest
value f takes anywhere (None when no minimum is attained: f unbounded below as x^3, x*cos(c*x)
or x^2 - y^2, or an infimum never reached, as tanh's -1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
from torch import Tensor

from .spec import Spec, format_value, parse_spec

Domain = tuple[float, float] | tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Minimum:
    """A known local minimum: its point, value, and whether it is a global one."""

    point: tuple[float, ...]
    value: float
    is_global: bool = True


@dataclass(frozen=True)
class Landscape:
    """A test function f: R^dim -> R with what a plot and an analysis need to know about it.

    Attributes:
        name: the registry name (``"rosenbrock"``); ``spec`` is the full spec (``"cosh:c=0.5"``).
        dim: 1 or 2.
        formula: f as text (``"x^2 - y^2"``); ``description`` says what it teaches.
        fn: the function on tensors of shape (..., dim) returning shape (...).
        start: default starting point (a tuple of ``dim`` floats).
        domain: (xmin, xmax) for 1-D, ((xmin, xmax), (ymin, ymax)) for 2-D.
        minima: the known local minima inside the domain.
        global_min: the infimum of f over R^dim when attained, else None.
        noise: std of the Gaussian noise added to each gradient component (0: deterministic).
        contour_scale: "log", "linear" or "auto" (log when the values on the domain span decades).
    """

    name: str
    dim: int
    formula: str
    description: str
    fn: Callable[[Tensor], Tensor] = field(repr=False, compare=False)
    start: tuple[float, ...]
    domain: Domain
    minima: tuple[Minimum, ...] = ()
    global_min: float | None = None
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    noise: float = 0.0
    contour_scale: str = "auto"

    @property
    def spec(self) -> str:
        kwargs = dict(self.params)
        if self.noise:
            kwargs["noise"] = self.noise
        return str(Spec(self.name, kwargs))

    def f(self, x: Tensor) -> Tensor:
        """f at ``x`` of shape (..., dim); returns shape (...)."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"{self.name} takes points of dimension {self.dim}, got shape {tuple(x.shape)}")
        return self.fn(x)

    __call__ = f

    def gradient(self, x: Tensor) -> Tensor:
        """The exact gradient (autograd) at each point of ``x`` (shape (..., dim))."""
        point = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.f(point).sum(), point)
        return grad

    def noisy_gradient(self, x: Tensor, generator: torch.Generator | None = None, scale: float | None = None) -> Tensor:
        """grad f(x) + eps with eps ~ N(0, scale^2 I) (scale defaults to this landscape's noise)."""
        scale = self.noise if scale is None else scale
        grad = self.gradient(x)
        if scale:
            grad = grad + scale * torch.randn(grad.shape, generator=generator, dtype=grad.dtype)
        return grad

    def hessian(self, x: Tensor) -> Tensor:
        """The exact (dim, dim) Hessian at one point ``x`` of shape (dim,)."""
        point = x.detach().to(torch.float64).reshape(self.dim)
        return torch.autograd.functional.hessian(lambda p: self.f(p), point)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """The domain as one (low, high) pair per coordinate."""
        return (self.domain,) if self.dim == 1 else self.domain  # type: ignore[return-value]

    def with_noise(self, noise: float) -> "Landscape":
        if isinstance(noise, bool) or not (isinstance(noise, (int, float)) and math.isfinite(noise)
                                           and 0 <= noise <= MAX_NOISE):
            raise ValueError(f"noise={noise!r} must be a number from 0 to {MAX_NOISE:g}")
        return replace(self, noise=float(noise))


# -- the functions ---------------------------------------------------------------------------

def _x(x: Tensor) -> Tensor:
    return x[..., 0]


def _y(x: Tensor) -> Tensor:
    return x[..., 1]


def _rosenbrock(x: Tensor) -> Tensor:
    return (1 - _x(x)) ** 2 + 100 * (_y(x) - _x(x) ** 2) ** 2


def _himmelblau(x: Tensor) -> Tensor:
    return (_x(x) ** 2 + _y(x) - 11) ** 2 + (_x(x) + _y(x) ** 2 - 7) ** 2


def _beale(x: Tensor) -> Tensor:
    a, b = _x(x), _y(x)
    return (1.5 - a + a * b) ** 2 + (2.25 - a + a * b**2) ** 2 + (2.625 - a + a * b**3) ** 2


def _rastrigin(x: Tensor) -> Tensor:
    return 10 * x.shape[-1] + (x**2 - 10 * torch.cos(2 * math.pi * x)).sum(-1)


def _minima_1d(d1: Callable[[float], float], low: float, high: float, pieces: int = 4000) -> list[float]:
    """The points in [low, high] where the closed-form derivative ``d1`` crosses from - to + (local
    minima), each by 100 bisections: closed forms, independent of autograd and of the analysis."""
    grid = [low + (high - low) * i / pieces for i in range(pieces + 1)]
    roots = []
    for a, b in zip(grid, grid[1:]):
        if d1(a) < 0 <= d1(b):
            for _ in range(100):
                mid = (a + b) / 2
                a, b = (mid, b) if d1(mid) < 0 else (a, mid)
            roots.append((a + b) / 2)
    return roots


def _xcos_minima(c: float) -> tuple[Minimum, ...]:
    """Local minima of x*cos(c*x) on its domain (-pi/c, 2*pi/c): f'(x) = cos(cx) - cx sin(cx) = 0."""
    roots = _minima_1d(lambda x: math.cos(c * x) - c * x * math.sin(c * x), -math.pi / c, 2 * math.pi / c)
    values = [x * math.cos(c * x) for x in roots]
    lowest = min(values)
    return tuple(Minimum((x,), v, is_global=v <= lowest + 1e-12) for x, v in zip(roots, values))


def _rastrigin_minima(bound: float = 5.12) -> tuple[Minimum, ...]:
    """Rastrigin is separable: its minima are the pairs of 1-D minima of x^2 - 10 cos(2 pi x),
    where 2x + 20 pi sin(2 pi x) = 0 (near, but not on, the integers); 11 per axis on [-5.12, 5.12]."""
    axis = _minima_1d(lambda x: 2 * x + 20 * math.pi * math.sin(2 * math.pi * x), -bound, bound)
    axis = [0.0 if abs(x) < 1e-12 else x for x in axis]
    piece = {x: x * x - 10 * math.cos(2 * math.pi * x) + 10 for x in axis}
    return tuple(Minimum((x, y), piece[x] + piece[y], is_global=(x == 0.0 and y == 0.0)) for x in axis for y in axis)


# A landscape parameter (c, kappa) outside these bounds overflows f at the start or makes the
# domain (pi/c wide) too large to draw; get_landscape also checks that f and its gradient are finite there.
MIN_PARAMETER, MAX_PARAMETER = 1e-6, 1e6
MAX_NOISE = 1e6

_PI_MULTIPLE = re.compile(r"^\s*(?:([0-9.eE+-]+)\s*\*\s*)?pi\s*(?:/\s*([0-9.eE+-]+))?\s*$")


def _check_positive(name: str, value: Any, landscape: str) -> float:
    """A positive finite parameter; strings 'pi', '0.15*pi', 'pi/4' are read as multiples of pi."""
    if isinstance(value, tuple) and len(value) == 2:  # the spec parser reads 'pi/4' as ('pi', 4)
        value = f"{value[0]}/{value[1]}"
    match = _PI_MULTIPLE.match(value) if isinstance(value, str) else None
    if match:
        try:
            value = float(match.group(1) or 1) * math.pi / float(match.group(2) or 1)
        except (ValueError, ZeroDivisionError):
            pass
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not MIN_PARAMETER <= value <= MAX_PARAMETER):
        raise ValueError(f"{landscape}: {name}={value!r} must be a number from {MIN_PARAMETER:g} to {MAX_PARAMETER:g}")
    return float(value)


def _coefficient(c: float) -> str:
    """c as the formula shows it: 'pi' for math.pi, '0.15*pi' for 0.15*math.pi, else the number."""
    if c == math.pi:
        return "pi"
    ratio = c / math.pi
    if abs(ratio - round(ratio, 4)) < 1e-12:
        return f"{ratio:g}*pi"
    return str(int(c)) if c.is_integer() else repr(c)  # exact, so the spec round-trips


def _xcos(c: float = math.pi) -> Landscape:
    c = _check_positive("c", c, "xcos")
    minima = _xcos_minima(c)
    # The notes' picture is on [-1, 2] for c = pi; other c scale it by pi/c.
    return Landscape(
        "xcos", 1, f"x*cos({_coefficient(c)}*x)", "a local minimum beside the global one (D2L: x*cos(pi*x) on [-1, 2]); "
        "c=0.15*pi is D2L's nonconvex Newton example", lambda x: _x(x) * torch.cos(c * _x(x)),
        start=(0.0,), domain=(-math.pi / c, 2 * math.pi / c), minima=minima, global_min=None,
        params={} if c == math.pi else {"c": _coefficient(c)},
    )


def _cosh(c: float = 0.5) -> Landscape:
    c = _check_positive("c", c, "cosh")
    return Landscape(
        "cosh", 1, f"cosh({_coefficient(c)}*x)", "convex, Newton's method converges fast (D2L: c=0.5 from x=10)",
        lambda x: torch.cosh(c * _x(x)), start=(10.0,), domain=(-12.0, 12.0),
        minima=(Minimum((0.0,), 1.0),), global_min=1.0, params={} if c == 0.5 else {"c": _coefficient(c)},
    )


def _quadratic(kappa: float = 10.0) -> Landscape:
    kappa = _check_positive("kappa", kappa, "quadratic")
    return Landscape(
        "quadratic", 2, f"(x1^2 + {_coefficient(kappa)}*x2^2)/2", "Hessian diag(1, kappa): condition number kappa "
        "(max(1,kappa)/min(1,kappa))", lambda x: (_x(x) ** 2 + kappa * _y(x) ** 2) / 2,
        start=(-5.0, -2.0), domain=((-6.0, 6.0), (-3.0, 3.0)), minima=(Minimum((0.0, 0.0), 0.0),),
        global_min=0.0, params={"kappa": _coefficient(kappa)} if kappa != 10.0 else {},
    )


_HIMMELBLAU_MINIMA = ((3.0, 2.0), (-2.805118086952745, 3.131312518250573),
                      (-3.779310253377747, -3.283185991286170), (3.584428340330492, -1.848126526964404))


def _fixed(name: str, dim: int, formula: str, description: str, fn: Callable[[Tensor], Tensor],
           start: tuple[float, ...], domain: Domain, minima: tuple[tuple[float, ...], ...] = (),
           global_min: float | None = None, contour_scale: str = "auto") -> Callable[[], Landscape]:
    def build() -> Landscape:
        known = tuple(Minimum(p, float(fn(torch.tensor(p, dtype=torch.float64)))) for p in minima)
        return Landscape(name, dim, formula, description, fn, start, domain, known, global_min,
                         contour_scale=contour_scale)

    return build


_FACTORIES: dict[str, Callable[..., Landscape]] = {
    "xcos": _xcos,
    "cube": _fixed("cube", 1, "x^3", "a saddle in 1-D: f'(0) = f''(0) = 0 but 0 is no minimum",
                   lambda x: _x(x) ** 3, (1.0,), (-2.0, 2.0)),
    "tanh": _fixed("tanh", 1, "tanh(x)", "vanishing gradient: from x=4, f'(x) = 1 - tanh(x)^2 ~ 1e-3",
                   lambda x: torch.tanh(_x(x)), (4.0,), (-5.0, 5.0)),
    "square": _fixed("square", 1, "x^2", "D2L's 1-D gradient descent: x_k = (1 - 2*lr)^k x_0",
                     lambda x: _x(x) ** 2, (10.0,), (-11.0, 11.0), ((0.0,),), 0.0),
    "cosh": _cosh,
    "bowl": _fixed("bowl", 2, "x1^2 + 2*x2^2", "D2L's 2-D gradient descent and SGD example (start (-5, -2))",
                   lambda x: _x(x) ** 2 + 2 * _y(x) ** 2, (-5.0, -2.0), ((-5.5, 1.5), (-3.0, 2.0)),
                   ((0.0, 0.0),), 0.0),
    "valley": _fixed("valley", 2, "0.1*x1^2 + 2*x2^2", "ill-conditioned valley (condition number 20): "
                     "GD zig-zags, momentum glides (D2L momentum section)",
                     lambda x: 0.1 * _x(x) ** 2 + 2 * _y(x) ** 2, (-5.0, -2.0), ((-6.0, 2.0), (-3.0, 2.0)),
                     ((0.0, 0.0),), 0.0),
    "saddle": _fixed("saddle", 2, "x^2 - y^2", "the saddle at (0, 0): Hessian eigenvalues 2 and -2; "
                     "unbounded below", lambda x: _x(x) ** 2 - _y(x) ** 2, (1.0, 0.0), ((-1.5, 1.5), (-1.5, 1.5))),
    "monkey": _fixed("monkey", 2, "x^3 - 3*x*y^2", "monkey saddle: three valleys meet at (0, 0), Hessian 0 "
                     "there (degenerate)", lambda x: _x(x) ** 3 - 3 * _x(x) * _y(x) ** 2, (1.0, 0.0),
                     ((-1.5, 1.5), (-1.5, 1.5))),
    "rosenbrock": _fixed("rosenbrock", 2, "(1 - x)^2 + 100*(y - x^2)^2", "a curved, narrow valley; "
                         "minimum at (1, 1)", _rosenbrock, (-1.5, 2.0), ((-2.0, 2.0), (-1.0, 3.0)),
                         ((1.0, 1.0),), 0.0, "log"),
    "himmelblau": _fixed("himmelblau", 2, "(x^2 + y - 11)^2 + (x + y^2 - 7)^2", "four global minima "
                         "(f = 0), one maximum, four saddles", _himmelblau, (0.0, 0.0),
                         ((-5.0, 5.0), (-5.0, 5.0)), _HIMMELBLAU_MINIMA, 0.0, "log"),
    "beale": _fixed("beale", 2, "(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
                    "flat plateaus and steep walls; minimum at (3, 0.5)", _beale, (1.0, 1.5),
                    ((-4.5, 4.5), (-4.5, 4.5)), ((3.0, 0.5),), 0.0, "log"),
    "rastrigin": lambda: Landscape(
        "rastrigin", 2, "20 + sum(x_i^2 - 10*cos(2*pi*x_i))", "a local minimum near every integer point "
        "(121 in the domain); global minimum at (0, 0)", _rastrigin, (2.2, -1.8), ((-5.12, 5.12), (-5.12, 5.12)),
        _rastrigin_minima(), 0.0),
    "quadratic": _quadratic,
}


LANDSCAPES: dict[str, Landscape] = {name: factory() for name, factory in _FACTORIES.items()}


def get_landscape(spec: str | Spec | Landscape) -> Landscape:
    """A landscape from its name or spec (``"quadratic:kappa=100"``, ``"xcos:c=0.47,noise=0.1"``)."""
    if isinstance(spec, Landscape):
        return spec
    parsed = parse_spec(spec, "landscape spec") if isinstance(spec, str) else spec
    name = parsed.name.lower()
    if name not in _FACTORIES:
        raise ValueError(f"unknown landscape {parsed.name!r}; choose one of: {', '.join(_FACTORIES)}")
    kwargs = dict(parsed.kwargs)
    noise = kwargs.pop("noise", 0.0)
    if not kwargs:
        landscape = LANDSCAPES[name]
    else:
        try:
            landscape = _FACTORIES[name](**kwargs)
        except TypeError:
            allowed = [k for k in _FACTORIES[name].__code__.co_varnames[: _FACTORIES[name].__code__.co_argcount]]
            raise ValueError(f"bad parameters {', '.join(kwargs)} for landscape {name!r}; allowed: "
                             f"{', '.join(allowed + ['noise'])}") from None
    _check_finite_start(landscape)
    return landscape.with_noise(noise) if noise else landscape


def _check_finite_start(landscape: Landscape) -> None:
    x = torch.tensor(landscape.start, dtype=torch.float64, requires_grad=True)
    value = landscape.f(x)
    (grad,) = torch.autograd.grad(value, x)
    if not (math.isfinite(float(value.detach())) and torch.isfinite(grad).all()):
        raise ValueError(f"landscape {landscape.spec}: f or its gradient at the start is not finite; "
                         "choose smaller parameters")


def is_landscape(problem: object) -> bool:
    """True for a Landscape or a spec string naming one (``"cosh:c=0.5"``), without raising."""
    if isinstance(problem, Landscape):
        return True
    if not isinstance(problem, str):
        return False
    return problem.partition(":")[0].strip().lower() in _FACTORIES


def describe(landscape: Landscape) -> dict[str, Any]:
    """A JSON-ready summary of a landscape (for `optimlab list` and the web app)."""
    return {
        "name": landscape.name, "spec": landscape.spec, "dim": landscape.dim, "formula": landscape.formula,
        "description": landscape.description, "start": list(landscape.start),
        "domain": [list(b) for b in landscape.bounds],
        "minima": [{"point": list(m.point), "value": m.value, "global": m.is_global} for m in landscape.minima],
        "global_min": landscape.global_min, "params": {k: format_value(v) for k, v in landscape.params.items()},
        "noise": landscape.noise,
    }


__all__ = ["Landscape", "Minimum", "LANDSCAPES", "get_landscape", "is_landscape", "describe"]
