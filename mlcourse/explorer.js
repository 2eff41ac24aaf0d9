// The map of the embedding explorer, drawn in the browser.
//
// Python (mlcourse/explorer.py, class ScatterMap) sends the points, their labels and the
// colours; this file draws them on a canvas, shows a clip's labels when the mouse is over it,
// and sends a clicked point back to Python as `selected`. Python does everything else
// (the UMAP map, the audio, the nearest neighbours).

const PADDING = 12; // pixels between the canvas edge and the outermost point (as in explorer.py)
const HOVER_RADIUS = 8; // how close, in pixels, the mouse must be to a point to pick it

const STYLE = `
.mlcourse-map { display: flex; gap: 16px; align-items: flex-start; font: 13px sans-serif; }
.mlcourse-map-stage { position: relative; }
.mlcourse-map canvas { border: 1px solid #ccc; cursor: crosshair; display: block; }
.mlcourse-map-tooltip { position: absolute; pointer-events: none; background: #fff; color: #000;
  border: 1px solid #888; border-radius: 3px; padding: 4px 6px; white-space: nowrap;
  box-shadow: 0 1px 4px rgba(0, 0, 0, 0.3); display: none; z-index: 2; }
.mlcourse-map-busy { position: absolute; inset: 0; display: none; align-items: center;
  justify-content: center; gap: 10px; background: rgba(255, 255, 255, 0.85); color: #000; }
.mlcourse-map-spinner { width: 18px; height: 18px; border: 3px solid #bbb; border-top-color: #1f77b4;
  border-radius: 50%; animation: mlcourse-spin 0.9s linear infinite; }
@keyframes mlcourse-spin { to { transform: rotate(360deg); } }
.mlcourse-map-legend { max-height: 480px; overflow-y: auto; }
.mlcourse-map-legend div { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
.mlcourse-map-swatch { width: 12px; height: 12px; border-radius: 50%; flex: none; }
`;

// Binary traits arrive as DataViews; copy them into typed arrays (the copy also aligns them).
function floats(view) {
  return new Float32Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}
function shorts(view) {
  return new Int16Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function element(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function render({ model, el }) {
  const size = model.get("size");
  const ratio = window.devicePixelRatio || 1;

  element("style", "", el).textContent = STYLE;
  const root = element("div", "mlcourse-map", el);
  const stage = element("div", "mlcourse-map-stage", root);
  const canvas = element("canvas", "", stage);
  canvas.width = size * ratio;
  canvas.height = size * ratio;
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  const tooltip = element("div", "mlcourse-map-tooltip", stage);
  const busy = element("div", "mlcourse-map-busy", stage);
  element("div", "mlcourse-map-spinner", busy);
  const busyText = element("span", "", busy);
  const legend = element("div", "mlcourse-map-legend", root);
  const context = canvas.getContext("2d");

  let xy = new Float32Array(0); // x0, y0, x1, y1, ... in [0, 1]
  let codes = new Int16Array(0); // concept-major: codes[c * n + i] is the class of point i for concept c
  let pixels = new Float32Array(0); // where each point is drawn, in CSS pixels

  const count = () => xy.length / 2;
  const conceptIndex = () => model.get("concepts").findIndex((c) => c.name === model.get("color_by"));

  function unpack() {
    xy = floats(model.get("xy"));
    codes = shorts(model.get("codes"));
    const span = size - 2 * PADDING;
    pixels = new Float32Array(xy.length);
    for (let i = 0; i < count(); i++) {
      pixels[2 * i] = PADDING + xy[2 * i] * span;
      pixels[2 * i + 1] = PADDING + (1 - xy[2 * i + 1]) * span;
    }
  }

  function ring(i, radius, colour, width) {
    context.beginPath();
    context.arc(pixels[2 * i], pixels[2 * i + 1], radius, 0, 2 * Math.PI);
    context.strokeStyle = colour;
    context.lineWidth = width;
    context.stroke();
  }

  function drawLegend(concept, colours, counts) {
    legend.replaceChildren();
    if (concept < 0) return;
    const title = element("b", "", legend);
    title.textContent = model.get("color_by");
    model.get("concepts")[concept].classes.forEach((name, k) => {
      const row = element("div", "mlcourse-map-legend-item", legend);
      element("span", "mlcourse-map-swatch", row).style.background = colours[k % colours.length];
      element("span", "", row).textContent = `${name} (${counts[k]})`;
    });
  }

  function draw() {
    const n = count();
    const concept = conceptIndex();
    const colours = model.get("colors");
    const classes = concept < 0 ? [] : model.get("concepts")[concept].classes;
    const radius = n > 5000 ? 1.6 : n > 1000 ? 2.4 : 3.5;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.fillStyle = "#fff";
    context.fillRect(0, 0, size, size);
    // One path per class: far faster than one per point at 20,000 points.
    const counts = new Array(classes.length).fill(0);
    context.globalAlpha = 0.8;
    for (let k = 0; k < Math.max(classes.length, 1); k++) {
      context.beginPath();
      for (let i = 0; i < n; i++) {
        if (concept >= 0 && codes[concept * n + i] !== k) continue;
        counts[k] += 1;
        context.moveTo(pixels[2 * i] + radius, pixels[2 * i + 1]);
        context.arc(pixels[2 * i], pixels[2 * i + 1], radius, 0, 2 * Math.PI);
      }
      context.fillStyle = concept < 0 ? "#777" : colours[k % colours.length];
      context.fill();
    }
    context.globalAlpha = 1;
    for (const i of model.get("highlight")) if (i >= 0 && i < n) ring(i, radius + 3, "#000", 1.5);
    const selected = model.get("selected");
    if (selected >= 0 && selected < n) ring(selected, radius + 5, "#d62728", 2.5);
    drawLegend(concept, colours, counts);
    // State for tests and for anyone inspecting the page.
    Object.assign(canvas.dataset, {
      points: n, colorBy: model.get("color_by"), space: model.get("space"), selected,
      draws: Number(canvas.dataset.draws || 0) + 1,
    });
  }

  function nearest(event) {
    // Points are drawn in the canvas's content box, inside its border.
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left - canvas.clientLeft;
    const y = event.clientY - box.top - canvas.clientTop;
    let best = -1;
    let bestDistance = HOVER_RADIUS * HOVER_RADIUS;
    for (let i = 0; i < count(); i++) {
      const d = (pixels[2 * i] - x) ** 2 + (pixels[2 * i + 1] - y) ** 2;
      if (d <= bestDistance) [best, bestDistance] = [i, d];
    }
    return best;
  }

  function showTooltip(event) {
    const i = nearest(event);
    if (i < 0) {
      tooltip.style.display = "none";
      return;
    }
    const n = count();
    tooltip.replaceChildren();
    element("b", "", tooltip).textContent = model.get("names")[i];
    model.get("concepts").forEach((c, k) => {
      element("div", "", tooltip).textContent = `${c.name}: ${c.classes[codes[k * n + i]]}`;
    });
    tooltip.style.left = `${Math.min(pixels[2 * i] + 12, size - 40)}px`;
    tooltip.style.top = `${pixels[2 * i + 1] + 12}px`;
    tooltip.style.display = "block";
  }

  function click(event) {
    const i = nearest(event);
    if (i < 0) return;
    model.set("selected", i);
    model.save_changes();
  }

  function showBusy() {
    const message = model.get("busy");
    busy.style.display = message ? "flex" : "none";
    busyText.textContent = message;
    canvas.dataset.busy = message ? "1" : "0";
    if (message) {
      // The note was shown at least once: on the canvas, and on the page, which keeps it when the
      // output is displayed again with its picture (EmbeddingExplorer.show) and the view is redrawn.
      canvas.dataset.busySeen = "1";
      window.mlcourseNotesShown = (window.mlcourseNotesShown || 0) + 1;
    }
  }

  // Several traits often change together (a new map and its space): draw once per frame.
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  };
  const reload = () => {
    unpack();
    redraw();
  };
  canvas.addEventListener("mousemove", showTooltip);
  canvas.addEventListener("mouseleave", () => (tooltip.style.display = "none"));
  canvas.addEventListener("click", click);
  model.on("change:xy", reload);
  model.on("change:codes", reload);
  for (const name of ["colors", "color_by", "concepts", "selected", "highlight", "space"]) {
    model.on(`change:${name}`, redraw);
  }
  model.on("change:busy", showBusy);

  unpack();
  draw();
  showBusy();
  return () => {
    model.off("change:xy", reload);
    model.off("change:codes", reload);
    model.off(null, redraw);
    model.off("change:busy", showBusy);
  };
}

export default { render };
