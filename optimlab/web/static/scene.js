// A scene is everything needed to redraw a run: landscape, start, optimizers (with colours),
// schedule, gradient noise, steps, seed. It lives in the URL hash so a link reproduces it:
//   #l=rosenbrock&s=-1.5,2&n=200&o=momentum:lr=0.001,momentum=0.9;1f77b4&o=adam:lr=0.05;ff7f0e
// Optimizers, schedules and landscapes are written as optimlab spec strings (name:key=value,...).

export const PALETTE = ["#e4572e", "#2e86de", "#17a673", "#f0a202", "#8e44ad", "#e84393", "#00a8a8", "#6d4c41"];

/** Parse one value of a spec string the way optimlab.spec.parse_value does. */
export function parseValue(text) {
  const low = text.trim().toLowerCase();
  if (low === "true" || low === "false") return low === "true";
  if (text.includes("/")) return text.split("/").map(parseValue);
  const number = Number(text);
  return text.trim() !== "" && Number.isFinite(number) ? number : text.trim();
}

export function formatValue(value) {
  if (Array.isArray(value)) return value.map(formatValue).join("/");
  if (typeof value === "number") return String(Number(value.toPrecision(6)));
  return String(value);
}

/** "momentum:lr=0.05,momentum=0.9" -> {name: "momentum", hyperparameters: {lr: 0.05, momentum: 0.9}} */
export function parseSpec(text) {
  const [name, ...rest] = text.trim().split(":");
  const hyperparameters = {};
  const body = rest.join(":").trim();
  if (body) {
    for (const item of body.split(",")) {
      const [key, ...value] = item.split("=");
      if (!key.trim() || !value.length) throw new Error(`malformed spec ${text}: expected key=value, got ${item}`);
      hyperparameters[key.trim()] = parseValue(value.join("="));
    }
  }
  return { name: name.trim(), hyperparameters };
}

export function formatSpec(name, hyperparameters) {
  const parts = Object.entries(hyperparameters || {}).map(([k, v]) => `${k}=${formatValue(v)}`);
  return parts.length ? `${name}:${parts.join(",")}` : name;
}

/** The scene as a URL hash (without '#'). */
export function sceneToHash(scene) {
  const params = new URLSearchParams();
  if (scene.preset) params.set("preset", scene.preset);
  params.set("l", scene.landscape);
  if (scene.start) params.set("s", scene.start.map(formatValue).join(","));
  params.set("n", String(scene.steps));
  if (scene.schedule && scene.schedule !== "constant") params.set("sch", scene.schedule);
  if (scene.noise) params.set("noise", formatValue(scene.noise));
  if (scene.seed) params.set("seed", String(scene.seed));
  for (const opt of scene.optimizers) params.append("o", `${opt.spec};${opt.color.replace("#", "")}`);
  return params.toString();
}

/** The scene a hash describes, or null when it names no landscape. Throws on malformed parts. */
export function hashToScene(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  if (!params.get("l")) return null;
  const start = params.get("s") ? params.get("s").split(",").map(Number) : null;
  if (start && start.some((v) => !Number.isFinite(v))) throw new Error(`bad start point in link: ${params.get("s")}`);
  const optimizers = params.getAll("o").map((item, index) => {
    const [spec, color] = item.split(";");
    parseSpec(spec); // validate
    return { spec, color: color && /^[0-9a-fA-F]{6}$/.test(color) ? `#${color}` : PALETTE[index % PALETTE.length] };
  });
  return {
    preset: params.get("preset") || null,
    landscape: params.get("l"),
    start,
    steps: Number(params.get("n") || 100),
    schedule: params.get("sch") || "constant",
    noise: Number(params.get("noise") || 0),
    seed: Number(params.get("seed") || 0),
    optimizers,
  };
}
