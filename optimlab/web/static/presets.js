// The notes' scenes (D2L "Optimization Algorithms", CS231n lecture 8), ready to run.
// Each is a scene (see scene.js) plus a caption saying what to watch.

export const PRESETS = [
  {
    id: "zigzag",
    title: "Zig-zag on an ill-conditioned valley vs momentum",
    caption: "f = 0.1·x1² + 2·x2² curves 20 times more steeply across the valley than along it. " +
      "Gradient descent with lr 0.4 bounces across the valley while it crawls along it, and with lr 0.6 " +
      "it diverges across it; momentum (v = μ·v + g) with the same lr 0.6 lets the oscillating " +
      "components cancel and the steady ones add up.",
    scene: {
      landscape: "valley", start: [-5, -2], steps: 40, schedule: "constant", noise: 0, seed: 0,
      optimizers: [
        { spec: "gd:lr=0.4", color: "#e4572e" },
        { spec: "gd:lr=0.6", color: "#f0a202" },
        { spec: "momentum:lr=0.6,momentum=0.5", color: "#2e86de" },
      ],
    },
  },
  {
    id: "saddle",
    title: "Escaping the saddle of x² − y²",
    caption: "At (0, 0) the gradient vanishes but the Hessian diag(2, −2) has a negative eigenvalue: " +
      "a saddle. Started 0.01 above the x₁ axis, gradient descent first slides towards it, where the " +
      "gradient is tiny; then the offset grows by a factor (1 + 2·lr) per step and the run escapes. " +
      "Momentum escapes sooner. Newton's textbook step H⁻¹g jumps straight onto the saddle and stays " +
      "there; the saddle-free variant (|H|⁻¹g) escapes. Set x₂ = 0 to watch gradient descent stall too.",
    scene: {
      landscape: "saddle", start: [1.2, 0.01], steps: 40, schedule: "constant", noise: 0, seed: 0,
      optimizers: [
        { spec: "gd:lr=0.1", color: "#e4572e" },
        { spec: "momentum:lr=0.1,momentum=0.9", color: "#2e86de" },
        { spec: "newton:mode=plain", color: "#8e44ad" },
        { spec: "newton", color: "#17a673" },
      ],
    },
  },
  {
    id: "local-global",
    title: "Local vs global minimum of x·cos(πx)",
    caption: "On [−1, 2], x·cos(πx) has a local minimum near x = −0.27 and the global one near x = 1.09. " +
      "Gradient descent settles in the basin it starts in, and so does momentum 0.8; momentum 0.9 " +
      "carries enough speed over the hump at x = 0.27 to reach the global minimum.",
    scene: {
      landscape: "xcos", start: [-0.8], steps: 150, schedule: "constant", noise: 0, seed: 0,
      optimizers: [
        { spec: "gd:lr=0.05", color: "#e4572e" },
        { spec: "momentum:lr=0.05,momentum=0.8", color: "#f0a202" },
        { spec: "momentum:lr=0.05,momentum=0.9", color: "#2e86de" },
      ],
    },
  },
  {
    id: "lr-too-large",
    title: "Learning rate too large",
    caption: "On f = x1² + 2·x2² the largest curvature is 4, so gradient descent is stable only for " +
      "lr < 2/4 = 0.5: along x2 each step multiplies the distance by |1 − 4·lr|. lr 0.1 converges smoothly, " +
      "lr 0.45 flips across the x1 axis but converges, lr 0.6 overshoots by a factor 1.4 every step and diverges.",
    scene: {
      landscape: "bowl", start: [-4, 1.8], steps: 40, schedule: "constant", noise: 0, seed: 0,
      optimizers: [
        { spec: "gd:lr=0.1", color: "#17a673" },
        { spec: "gd:lr=0.45", color: "#f0a202" },
        { spec: "gd:lr=0.6", color: "#e4572e" },
      ],
    },
  },
  {
    id: "adagrad-rmsprop",
    title: "AdaGrad vs RMSProp: the step size",
    caption: "AdaGrad divides by the square root of the sum of all squared gradients, so its steps keep " +
      "shrinking and it stalls before the minimum; RMSProp uses a leaky average (α = 0.9) instead, so its " +
      "step size stays usable: after 40 steps AdaGrad is still far up the valley, RMSProp has converged.",
    scene: {
      landscape: "valley", start: [-5, -2], steps: 40, schedule: "constant", noise: 0, seed: 0,
      optimizers: [
        { spec: "adagrad:lr=0.4", color: "#e4572e" },
        { spec: "rmsprop:lr=0.4,alpha=0.9", color: "#2e86de" },
      ],
    },
  },
  {
    id: "sgd-noise",
    title: "Noisy gradients and a decaying learning rate",
    caption: "D2L's SGD scene: on x1² + 2·x2² every gradient gets N(0, 1) noise. With a constant lr the " +
      "iterates never settle: they jitter in a ball whose size scales with lr. The polynomial decay " +
      "η_t = η₀/√(1 + 0.1·t) shrinks the steps, and the noise with them, slowly enough to keep moving; " +
      "pick exponential with gamma 0.9 (it freezes before the minimum) or constant to compare.",
    scene: {
      landscape: "bowl", start: [-4, -1.5], steps: 100, schedule: "inverse_time:k=0.1,power=0.5", noise: 1, seed: 0,
      optimizers: [
        { spec: "sgd:lr=0.1", color: "#e4572e" },
        { spec: "momentum:lr=0.05,momentum=0.5", color: "#2e86de" },
      ],
    },
  },
  {
    id: "rosenbrock",
    title: "Rosenbrock's banana",
    caption: "A curved, narrow valley with its minimum at (1, 1): gradient descent needs a tiny lr " +
      "to stay in it and crawls; momentum and Nesterov travel along it much faster, Adam's per-coordinate " +
      "steps zig-zag down the valley walls.",
    scene: {
      landscape: "rosenbrock", start: [-1.5, 2], steps: 500, schedule: "constant", noise: 0, seed: 0,
      optimizers: [
        { spec: "gd:lr=0.001", color: "#e4572e" },
        { spec: "momentum:lr=0.001,momentum=0.9", color: "#2e86de" },
        { spec: "nesterov:lr=0.001,momentum=0.9", color: "#8e44ad" },
        { spec: "adam:lr=0.05", color: "#17a673" },
      ],
    },
  },
];

export function presetById(id) {
  return PRESETS.find((preset) => preset.id === id) || null;
}
