// The sidebar's editors: optimizer cards (name, colour, hyperparameters) and the schedule's fields.
// Each editor reads/writes a plain object and calls onChange() after every edit.

import { formatValue, parseValue } from "./scene.js";

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}
export { element };

/** A value typed into a field, checked against the kind the API announced; throws with a message. */
export function readField(kind, text, name) {
  const value = parseValue(String(text));
  if (kind === "pair") {
    if (!Array.isArray(value) || value.length !== 2 || value.some((v) => typeof v !== "number")) {
      throw new Error(`${name}=${text} must be two numbers like 0.9/0.999`);
    }
    return value;
  }
  if (kind === "list") {
    const list = Array.isArray(value) ? value : [value];
    if (list.some((v) => typeof v !== "number")) throw new Error(`${name}=${text} must be numbers like 10/20/30`);
    return list;
  }
  if ((kind === "float" || kind === "int") && typeof value !== "number") throw new Error(`${name}=${text} is not a number`);
  return value;
}

// Hyperparameters that get a slider: lr on a log scale, the decay factors on a linear one.
const SLIDERS = {
  lr: { log: true, min: 1e-5, max: 2 },
  momentum: { log: false, min: 0, max: 0.99 },
  alpha: { log: false, min: 0.5, max: 0.999 },
};
const SLIDER_STEPS = 400;

/** A range input for one hyperparameter; `onMove(value)` on every movement (the page recomputes live). */
function sliderFor(hp, { log, min, max }, current, onMove) {
  const [lo, hi] = log ? [Math.log10(min), Math.log10(max)] : [min, max];
  const toValue = (position) => {
    const t = lo + (hi - lo) * (position / SLIDER_STEPS);
    return Number((log ? 10 ** t : t).toPrecision(3));
  };
  const clamped = Math.min(max, Math.max(min, current));
  const position = Math.round(((log ? Math.log10(clamped) : clamped) - lo) / (hi - lo) * SLIDER_STEPS);
  const slider = element("input", { type: "range", min: "0", max: String(SLIDER_STEPS), step: "1",
    value: String(position), class: "hp-slider", "data-slider": hp.name, "aria-label": `${hp.name} slider` });
  slider.addEventListener("input", () => onMove(toValue(Number(slider.value))));
  return slider;
}

/** Labelled inputs for `info.hyperparameters`, editing `values` (only non-defaults are kept). */
export function hyperparameterFields(info, values, onChange) {
  const grid = element("div", { class: "hp-grid" });
  for (const hp of info.hyperparameters) {
    const id = `hp-${Math.random().toString(36).slice(2, 9)}`;
    const current = hp.name in values ? values[hp.name] : hp.default;
    let input;
    if (hp.kind === "bool") {
      input = element("input", { type: "checkbox", id, "data-hp": hp.name });
      input.checked = Boolean(current);
      input.addEventListener("change", () => {
        if (input.checked === Boolean(hp.default)) delete values[hp.name];
        else values[hp.name] = input.checked;
        onChange();
      });
    } else {
      input = element("input", { type: "text", id, inputmode: "decimal", spellcheck: "false", "data-hp": hp.name,
        value: current === null ? "" : formatValue(current), placeholder: hp.required ? "required" : hp.default === null ? "optional" : "" });
      input.addEventListener("change", () => {
        try {
          const value = readField(hp.kind, input.value, hp.name);
          input.classList.remove("invalid");
          input.title = "";
          if (hp.default !== null && formatValue(value) === formatValue(hp.default)) delete values[hp.name];
          else values[hp.name] = value;
        } catch (error) {
          input.classList.add("invalid");
          input.title = error.message;
          values[hp.name] = input.value; // sent as typed: the server answers with a clear 422
        }
        onChange();
      });
    }
    const label = element("label", { for: id, class: hp.kind === "bool" ? "hp bool" : "hp" },
      [element("span", { text: hp.name, title: hp.name }), input]);
    grid.append(label);
    const slider = SLIDERS[hp.name];
    if (slider && hp.kind === "float" && typeof current === "number") {
      grid.append(sliderFor(hp, slider, current, (value) => {
        input.value = formatValue(value);
        input.classList.remove("invalid");
        values[hp.name] = value;
        onChange();
      }));
    }
  }
  return grid;
}

/** One optimizer card: colour, name, remove button, hyperparameters. */
export function optimizerCard(optimizer, catalogue, { onChange, onRemove, onRename, removable }) {
  const info = catalogue.find((entry) => entry.name === optimizer.name);
  const names = element("select", { class: "opt-name", "aria-label": "optimizer" },
    catalogue.map((entry) => element("option", { value: entry.name, text: entry.name })));
  names.value = optimizer.name;
  names.addEventListener("change", () => onRename(names.value));
  const colour = element("input", { type: "color", class: "opt-colour", value: optimizer.color, "aria-label": "colour" });
  colour.addEventListener("input", () => { optimizer.color = colour.value; onChange(); });
  const remove = element("button", { class: "icon-button", type: "button", title: "remove this optimizer",
    "aria-label": "remove optimizer", text: "×", onclick: onRemove });
  remove.disabled = !removable;
  const header = element("div", { class: "opt-header" }, [colour, names, remove]);
  const description = element("div", { class: "opt-description", text: info ? info.description : "" });
  const card = element("div", { class: "opt-card" }, [header, description]);
  card.style.setProperty("--accent", optimizer.color);
  colour.addEventListener("input", () => card.style.setProperty("--accent", colour.value));
  if (info) card.append(hyperparameterFields(info, optimizer.hyperparameters, onChange));
  return card;
}
