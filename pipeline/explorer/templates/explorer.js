// The candidate explorer: table, 3D viewers and plots over window.EXPLORER_DATA (data.js).
// Plain browser JavaScript with no build step; 3Dmol.js draws the crystals, plotly.js the plots.
"use strict";

const DATA = window.EXPLORER_DATA;
const COLUMNS = DATA.columns;
const COLUMN_INDEX = Object.fromEntries(COLUMNS.map((c, i) => [c.key, i]));
const PAGE_SIZE = 100;
// Columns of whole numbers (atoms, rank) print without decimals; the others with three.
COLUMNS.forEach((c, i) => {
  c.integer = c.kind === "number" &&
    DATA.rows.every((row) => row[i] === null || Number.isInteger(row[i]));
});
const BACKGROUND = "white";

const state = {
  sortKey: null,
  sortDescending: false,
  search: "",
  passingOnly: false,
  filters: {},            // column key -> filter text
  visible: new Set(COLUMNS.filter((c) => c.visible).map((c) => c.key)),
  page: 0,
  order: [],              // row indices after filtering and sorting
  selected: null,
  cellAtoms: { candidate: 0, known: 0 },   // atoms of the unit cell
  atomsDrawn: { candidate: 0, known: 0 },  // atoms drawn: the cell's plus images on its faces
};

// ---- values ---------------------------------------------------------------------------

function cell(row, key) {
  const i = COLUMN_INDEX[key];
  return i === undefined ? null : row[i];
}

function rowOf(id) {
  return DATA.rows.find((row) => cell(row, "id") === id);
}

function formatValue(value, column) {
  if (value === null || value === undefined) return "";
  if (column.kind === "number" && typeof value === "number") {
    return column.integer ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 1 : 3);
  }
  if (column.kind === "bool") return value ? "yes" : "no";
  return String(value);
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---- filtering and sorting ------------------------------------------------------------

// "<0.08", ">=1.6", "=P1", "!=x", or text to find (case-insensitive).
function makeFilter(text, column) {
  const match = text.trim().match(/^(<=|>=|!=|<|>|=)\s*(.+)$/);
  if (!match) {
    const needle = text.trim().toLowerCase();
    return (value) => formatValue(value, column).toLowerCase().includes(needle);
  }
  const [, op, operand] = match;
  const number = Number(operand);
  const numeric = column.kind === "number" && !Number.isNaN(number);
  return (value) => {
    if (value === null || value === undefined) return false;
    const left = numeric ? value : formatValue(value, column).toLowerCase();
    const right = numeric ? number : operand.trim().toLowerCase();
    switch (op) {
      case "<": return left < right;
      case "<=": return left <= right;
      case ">": return left > right;
      case ">=": return left >= right;
      case "=": return left === right;
      default: return left !== right;
    }
  };
}

function compareValues(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;   // missing values last either way
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return a ? -1 : 1;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function updateOrder() {
  const tests = Object.entries(state.filters)
    .filter(([, text]) => text.trim())
    .map(([key, text]) => [COLUMN_INDEX[key], makeFilter(text, COLUMNS[COLUMN_INDEX[key]])]);
  const needle = state.search.trim().toLowerCase();
  const passes = COLUMN_INDEX.passes;
  const order = [];
  DATA.rows.forEach((row, index) => {
    if (state.passingOnly && passes !== undefined && row[passes] !== true) return;
    if (!tests.every(([i, test]) => test(row[i]))) return;
    if (needle && !row.some((v, i) => formatValue(v, COLUMNS[i]).toLowerCase().includes(needle))) return;
    order.push(index);
  });
  if (state.sortKey !== null) {
    const i = COLUMN_INDEX[state.sortKey];
    const sign = state.sortDescending ? -1 : 1;
    order.sort((x, y) => {
      const a = DATA.rows[x][i];
      const b = DATA.rows[y][i];
      if (a === null || a === undefined || b === null || b === undefined) return compareValues(a, b);
      return sign * compareValues(a, b) || x - y;
    });
  }
  state.order = order;
}

// ---- table ----------------------------------------------------------------------------

function visibleColumns() {
  return COLUMNS.filter((c) => state.visible.has(c.key));
}

function renderHeader() {
  const columns = visibleColumns();
  document.getElementById("header-row").innerHTML = columns
    .map((c) => {
      const sorted = state.sortKey === c.key ? (state.sortDescending ? "sorted-desc" : "sorted-asc") : "";
      return `<th data-key="${escapeHtml(c.key)}" class="${sorted}" title="${escapeHtml(c.key)}">${escapeHtml(c.label)}</th>`;
    })
    .join("");
  document.getElementById("filter-row").innerHTML = columns
    .map((c) => `<th><input data-key="${escapeHtml(c.key)}" value="${escapeHtml(state.filters[c.key] || "")}"></th>`)
    .join("");
}

function cellClass(column, value) {
  if (column.key === "passes") return value === true ? "pass" : "fail";
  return column.kind === "number" ? "number" : "";
}

function renderBody() {
  const columns = visibleColumns();
  const pages = Math.max(1, Math.ceil(state.order.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const start = state.page * PAGE_SIZE;
  const html = state.order.slice(start, start + PAGE_SIZE).map((index) => {
    const row = DATA.rows[index];
    const id = cell(row, "id");
    const cells = columns
      .map((c) => {
        const value = cell(row, c.key);
        return `<td class="${cellClass(c, value)}">${escapeHtml(formatValue(value, c))}</td>`;
      })
      .join("");
    const selected = id === state.selected ? ' class="selected"' : "";
    return `<tr data-id="${escapeHtml(id)}"${selected}>${cells}</tr>`;
  });
  document.getElementById("table-body").innerHTML = html.join("");
  document.getElementById("row-count").textContent =
    `${state.order.length} of ${DATA.rows.length} structures`;
  document.getElementById("page-label").textContent = `page ${state.page + 1} of ${pages}`;
}

function refreshTable() {
  updateOrder();
  renderBody();
}

function setupTable() {
  document.getElementById("column-list").innerHTML = COLUMNS.map(
    (c) => `<label><input type="checkbox" data-key="${escapeHtml(c.key)}"${state.visible.has(c.key) ? " checked" : ""}> ${escapeHtml(c.label)}</label>`,
  ).join("");
  document.getElementById("column-list").addEventListener("change", (event) => {
    const key = event.target.dataset.key;
    if (event.target.checked) state.visible.add(key);
    else state.visible.delete(key);
    renderHeader();
    renderBody();
  });
  document.getElementById("header-row").addEventListener("click", (event) => {
    const key = event.target.closest("th")?.dataset.key;
    if (!key) return;
    state.sortDescending = state.sortKey === key ? !state.sortDescending : false;
    state.sortKey = key;
    renderHeader();
    refreshTable();
  });
  document.getElementById("filter-row").addEventListener("input", (event) => {
    state.filters[event.target.dataset.key] = event.target.value;
    state.page = 0;
    refreshTable();
  });
  document.getElementById("search").addEventListener("input", (event) => {
    state.search = event.target.value;
    state.page = 0;
    refreshTable();
  });
  document.getElementById("passing-only").addEventListener("change", (event) => {
    state.passingOnly = event.target.checked;
    state.page = 0;
    refreshTable();
  });
  document.getElementById("page-prev").addEventListener("click", () => {
    state.page = Math.max(0, state.page - 1);
    renderBody();
  });
  document.getElementById("page-next").addEventListener("click", () => {
    state.page += 1;
    renderBody();
  });
  document.getElementById("table-body").addEventListener("click", (event) => {
    const id = event.target.closest("tr")?.dataset.id;
    if (id !== undefined) select(id);
  });
  if ("rank" in COLUMN_INDEX) state.sortKey = "rank";
  renderHeader();
  refreshTable();
}

// ---- 3D viewers -----------------------------------------------------------------------

const viewers = {};
// 3Dmol.js bonds any two atoms closer than the sum of their covalent radii plus 0.25 Å, which
// in an oxide joins neighbouring metals too; with anions present only bonds to them are kept.
const ANIONS = new Set(["N", "O", "F", "P", "S", "Cl", "Se", "Br", "Te", "I"]);

function dropCationCationBonds(model) {
  const atoms = model.selectedAtoms({});
  if (!atoms.some((a) => ANIONS.has(a.elem))) return;
  const byIndex = new Map(atoms.map((a) => [a.index, a]));
  for (const atom of atoms) {
    if (ANIONS.has(atom.elem)) continue;
    const kept = atom.bonds.map((j, k) => [j, atom.bondOrder[k]]).filter(([j]) => ANIONS.has(byIndex.get(j)?.elem));
    atom.bonds = kept.map(([j]) => j);
    atom.bondOrder = kept.map(([, order]) => order);
  }
}

function makeViewer(elementId) {
  return $3Dmol.createViewer(document.getElementById(elementId), { backgroundColor: BACKGROUND });
}

// Draws one crystal (CIF text) in its unit cell, with the periodic images that lie on the
// cell's faces and edges (or 2x2x2 cells) so that bonds across the boundary show.
// Returns [atoms in the cell, atoms drawn].
function drawCrystal(viewer, cif) {
  viewer.clear();
  if (!cif) {
    viewer.render();
    return [0, 0];
  }
  const model = viewer.addModel(cif, "cif");
  const cellAtoms = model.selectedAtoms({}).length;
  if (document.getElementById("supercell").checked) viewer.replicateUnitCell(2, 2, 2, model, true);
  else viewer.replicateUnitCell(1, 1, 1, model, true);  // 1: only the images on the cell
  dropCationCationBonds(model);
  model.setStyle({}, {
    sphere: { scale: 0.3, colorscheme: "Jmol" },
    stick: { radius: 0.12, colorscheme: "Jmol" },
  });
  viewer.addUnitCell(model, { box: { color: "#555" }, alabel: "a", blabel: "b", clabel: "c" });
  viewer.zoomTo();
  viewer.render();
  return [cellAtoms, model.selectedAtoms({}).length];
}

function fileLinks(files) {
  const links = [];
  if (files.poscar) links.push(`<a href="${escapeHtml(files.poscar)}" download>POSCAR</a>`);
  if (files.cif) links.push(`<a href="${escapeHtml(files.cif)}" download>CIF</a>`);
  if (files.dft_ready) links.push(`<a href="${escapeHtml(files.dft_ready)}" download>dft_ready (zip)</a>`);
  return links.join("");
}

const FACT_KEYS = ["model", "space_group", "e_above_hull", "band_gap", "band_gap_level", "delta_g_pbx", "passes", "failed", "new", "known_as"];

function renderFacts(row) {
  const others = COLUMNS.filter((c) => c.kind === "number" && c.key.startsWith("e_above_hull_"));
  const keys = FACT_KEYS.concat(others.map((c) => c.key));
  document.getElementById("candidate-facts").innerHTML = keys
    .filter((k) => k in COLUMN_INDEX && cell(row, k) !== null && cell(row, k) !== "")
    .map((k) => `<dt>${escapeHtml(COLUMNS[COLUMN_INDEX[k]].label)}</dt><dd>${escapeHtml(formatValue(cell(row, k), COLUMNS[COLUMN_INDEX[k]]))}</dd>`)
    .join("");
}

function renderLegend(elements) {
  const colors = $3Dmol.elementColors.Jmol;
  document.getElementById("legend").innerHTML = elements
    .map((el) => {
      const hex = (colors[el] ?? 0xcccccc).toString(16).padStart(6, "0");
      return `<span><i style="background:#${hex}"></i>${escapeHtml(el)}</span>`;
    })
    .join("");
}

function drawSelection() {
  const id = state.selected;
  const structure = DATA.structures[id];
  const row = rowOf(id);
  document.getElementById("candidate-title").textContent = `${id} · ${structure.formula}`;
  document.getElementById("candidate-links").innerHTML = fileLinks(structure.files);
  renderFacts(row);
  [state.cellAtoms.candidate, state.atomsDrawn.candidate] = drawCrystal(viewers.candidate, structure.cif);
  const nearest = structure.nearest;
  const known = nearest ? DATA.known[nearest.id] : null;
  document.getElementById("known-title").textContent = known ? `${nearest.id} · ${known.formula}` : "none";
  document.getElementById("known-links").innerHTML = known ? fileLinks(known.files) : "";
  document.getElementById("known-how").textContent = known
    ? `chosen as: ${nearest.how}` + (known.source ? `; source ${known.source}` : "") +
      (known.energy_per_atom !== null && known.energy_per_atom !== undefined ? `; E = ${known.energy_per_atom.toFixed(3)} eV/atom` : "")
    : "no known structure to compare with";
  [state.cellAtoms.known, state.atomsDrawn.known] = drawCrystal(viewers.known, known ? known.cif : null);
}

function setupViewers() {
  viewers.candidate = makeViewer("viewer-candidate");
  viewers.known = makeViewer("viewer-known");
  renderLegend(DATA.meta.elements);
  document.getElementById("supercell").addEventListener("change", () => state.selected && drawSelection());
  document.getElementById("spin").addEventListener("change", (event) => {
    for (const viewer of Object.values(viewers)) viewer.spin(event.target.checked ? "y" : false);
  });
}

// ---- plots ----------------------------------------------------------------------------

const PLOT_CONFIG = { displaylogo: false, responsive: true };

function numberColumn(key) {
  return DATA.rows.map((row) => {
    const v = cell(row, key);
    return typeof v === "number" ? v : null;
  });
}

// Row indices with the worst first, so the best are drawn last, on top of worse ones at the
// same composition: failing before passing, then by E_hull from high to low.
function drawingOrder() {
  const eHull = numberColumn("e_above_hull");
  const passes = DATA.rows.map((row) => cell(row, "passes") === true);
  return DATA.rows
    .map((_, i) => i)
    .sort((a, b) => (passes[a] - passes[b]) || ((eHull[b] ?? Infinity) - (eHull[a] ?? Infinity)));
}

function hoverText(row) {
  const parts = [cell(row, "id"), cell(row, "formula")];
  const eHull = cell(row, "e_above_hull");
  if (typeof eHull === "number") parts.push(`E_hull ${eHull.toFixed(3)} eV/atom`);
  return parts.join("<br>");
}

// The ring around the selected point: a layout shape sized in pixels, so that moving it
// redraws only the shapes, not the thousands of points.
function highlightShape(x, y) {
  const visible = x !== null && x !== undefined && y !== null && y !== undefined;
  return {
    type: "circle", xref: "x", yref: "y", xsizemode: "pixel", ysizemode: "pixel",
    xanchor: visible ? x : 0, yanchor: visible ? y : 0, x0: -10, x1: 10, y0: -10, y1: 10,
    line: { color: "#e4007c", width: 3 }, visible,
  };
}

function plotHull() {
  const element = document.getElementById("plot-hull");
  const { elements, tie_lines: tieLines, stable } = DATA.hull;
  if (elements.length !== 3) {
    element.innerHTML = `<p class="note">The ternary hull needs a three-element system, not ${escapeHtml(elements.join("-"))}.</p>`;
    return null;
  }
  const h = Math.sqrt(3) / 2;
  const order = drawingOrder().filter((i) => DATA.structures[cell(DATA.rows[i], "id")].xy);
  const eHull = numberColumn("e_above_hull");
  const limit = 2 * DATA.meta.thresholds.e_above_hull;
  const traces = [
    { x: [0, 1, 0.5, 0], y: [0, 0, h, 0], mode: "lines", type: "scatter", line: { color: "#222", width: 1 }, hoverinfo: "skip", showlegend: false },
    {
      x: tieLines.flatMap((l) => [l[0], l[2], null]), y: tieLines.flatMap((l) => [l[1], l[3], null]),
      mode: "lines", type: "scatter", line: { color: "#aaa", width: 1 }, hoverinfo: "skip", name: "tie lines",
    },
    {
      x: order.map((i) => DATA.structures[cell(DATA.rows[i], "id")].xy[0]),
      y: order.map((i) => DATA.structures[cell(DATA.rows[i], "id")].xy[1]),
      customdata: order.map((i) => cell(DATA.rows[i], "id")),
      text: order.map((i) => hoverText(DATA.rows[i])),
      hoverinfo: "text", mode: "markers", type: "scatter", name: "candidates",
      marker: {
        symbol: "diamond", size: 10, color: order.map((i) => eHull[i]), cmin: 0, cmax: limit,
        colorscale: "Viridis", reversescale: true, line: { color: "#333", width: 0.5 },
        colorbar: { title: { text: "E_hull (eV/atom)" }, thickness: 12 },
      },
    },
    {
      // Elements are named at the corners already.
      x: stable.map((s) => s.x), y: stable.map((s) => s.y),
      text: stable.map((s) => (elements.includes(s.formula.replace(/\d+$/, "")) ? "" : s.formula)),
      customdata: stable.map((s) => null), mode: "markers+text", type: "scatter", textposition: "top right",
      textfont: { size: 10 }, marker: { color: "black", size: 7 }, name: "stable phases", hoverinfo: "text",
    },
  ];
  const layout = {
    title: { text: "Ternary hull: click a candidate", font: { size: 14 }, x: 0.02, xanchor: "left" },
    margin: { l: 20, r: 20, t: 40, b: 20 },
    xaxis: { visible: false, range: [-0.08, 1.08] },
    yaxis: { visible: false, range: [-0.08, h + 0.08], scaleanchor: "x" },
    showlegend: false,
    shapes: [highlightShape(null, null)],
    annotations: elements.map((el, i) => ({
      x: [0, 1, 0.5][i], y: [0, 0, h][i], text: `<b>${escapeHtml(el)}</b>`, showarrow: false,
      yshift: i === 2 ? 14 : -14,
    })),
  };
  Plotly.newPlot(element, traces, layout, PLOT_CONFIG);
  element.on("plotly_click", (event) => {
    const id = event.points[0]?.customdata;
    if (id) select(id);
  });
  return { element, highlight: 0, xy: (id) => DATA.structures[id].xy || [null, null] };
}

function plotGap() {
  const element = document.getElementById("plot-gap");
  if (!("band_gap" in COLUMN_INDEX) || !("delta_g_pbx" in COLUMN_INDEX)) {
    element.innerHTML = '<p class="note">No band gap or ΔG_pbx column in the tables.</p>';
    return null;
  }
  const t = DATA.meta.thresholds;
  const gap = numberColumn("band_gap");
  const dg = numberColumn("delta_g_pbx");
  const order = drawingOrder();
  const group = (passing) => order.filter((i) => (cell(DATA.rows[i], "passes") === true) === passing);
  const trace = (indices, name, color, size) => ({
    x: indices.map((i) => dg[i]), y: indices.map((i) => gap[i]),
    customdata: indices.map((i) => cell(DATA.rows[i], "id")),
    text: indices.map((i) => hoverText(DATA.rows[i])), hoverinfo: "text",
    mode: "markers", type: "scatter", name, marker: { color, size, line: { color: "#333", width: 0.5 } },
  });
  const traces = [
    trace(group(false), "filtered out", "#b0b0b0", 8),
    trace(group(true), "passes every filter", "#d62728", 10),
  ];
  const finiteDg = dg.filter((v) => v !== null);
  const left = Math.min(0, ...finiteDg);
  const layout = {
    title: { text: "Band gap vs ΔG_pbx: click a candidate", font: { size: 14 }, x: 0.02, xanchor: "left" },
    margin: { l: 60, r: 20, t: 40, b: 50 },
    xaxis: { title: { text: "ΔG_pbx (eV/atom)" }, zeroline: false },
    yaxis: { title: { text: `band gap, ${t.band_gap_level} level (eV)` }, zeroline: false },
    legend: { orientation: "h", y: -0.2 },
    shapes: [{
      type: "rect", xref: "x", yref: "y", x0: left, x1: t.delta_g_pbx, y0: t.band_gap_min, y1: t.band_gap_max,
      fillcolor: "rgba(44,160,44,0.15)", line: { width: 0 }, layer: "below",
    }, highlightShape(null, null)],
  };
  Plotly.newPlot(element, traces, layout, PLOT_CONFIG);
  element.on("plotly_click", (event) => {
    const id = event.points[0]?.customdata;
    if (id) select(id);
  });
  const index = Object.fromEntries(DATA.rows.map((row, i) => [cell(row, "id"), i]));
  return { element, highlight: 1, xy: (id) => [dg[index[id]], gap[index[id]]] };
}

const plots = [];

function highlightInPlots(id) {
  for (const plot of plots) {
    const { xanchor, yanchor, visible } = highlightShape(...plot.xy(id));
    const shape = `shapes[${plot.highlight}]`;
    Plotly.relayout(plot.element, {
      [`${shape}.xanchor`]: xanchor, [`${shape}.yanchor`]: yanchor, [`${shape}.visible`]: visible,
    });
  }
}

// ---- selection ------------------------------------------------------------------------

function select(id) {
  if (!(id in DATA.structures)) return;
  state.selected = id;
  const position = state.order.findIndex((i) => cell(DATA.rows[i], "id") === id);
  if (position >= 0) state.page = Math.floor(position / PAGE_SIZE);
  renderBody();
  document.querySelector("#table-body tr.selected")?.scrollIntoView({ block: "nearest" });
  drawSelection();
  highlightInPlots(id);
  if (window.location.hash !== `#${encodeURIComponent(id)}`) {
    history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  }
}

function summary() {
  const passing = DATA.rows.filter((row) => cell(row, "passes") === true).length;
  const t = DATA.meta.thresholds;
  return `${DATA.meta.chemsys}: ${DATA.rows.length} relaxed structures, ${passing} pass every filter ` +
    `(E_hull ≤ ${t.e_above_hull} eV/atom, band gap ${t.band_gap_min}–${t.band_gap_max} eV at ` +
    `${t.band_gap_level} level, ΔG_pbx ≤ ${t.delta_g_pbx} eV/atom).`;
}

function start() {
  document.getElementById("summary").textContent = summary();
  setupTable();
  setupViewers();
  for (const plot of [plotHull(), plotGap()]) if (plot) plots.push(plot);
  const fromHash = decodeURIComponent(window.location.hash.slice(1));
  const first = state.order.length ? cell(DATA.rows[state.order[0]], "id") : null;
  const initial = fromHash in DATA.structures ? fromHash : first;
  if (initial !== null) select(initial);
  else document.getElementById("candidate-title").textContent = "none: the run relaxed no structure";
}

// For scripts and tests: the page's state and its selection.
window.explorer = { state, select, viewers };
start();
