// The explanation dashboard: every view asks the service for a bounded JSON payload
// (relative URLs only, so it works behind a path prefix) and draws it with plotly.js.
// A static report sets window.DASHBOARD_STATIC: the same views read its stored answers.
"use strict";

const STATIC = window.DASHBOARD_STATIC || null;
const SUMMARY_TOP = 20;  // features the summary view asks for; its slider shows fewer
const TOKEN_KEY = "scoring-api-token";
const state = { summary: null, output: 0, row: null, values: null };
// the newest request of each local view: an older answer arriving later is dropped
const latest = { row: 0, whatif: 0, ice: 0 };
const $ = (id) => document.getElementById(id);
// plotly.js loads after this script (deferred: the page paints first), and the first data
// requests run while it is parsed
const plotlyReady = new Promise((resolve) => {
  if (document.readyState === "complete") resolve();
  else window.addEventListener("load", resolve);
});

// -- the service -----------------------------------------------------------------------
// The token comes from the page's fragment (#token=...: never sent to the server, so it
// stays out of logs) or from the form shown after a 401; it lives in sessionStorage.
function readToken() {
  const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function queryKey(path, params) {
  const keys = Object.keys(params || {}).filter((k) => params[k] !== null && params[k] !== undefined).sort();
  const query = new URLSearchParams(keys.map((k) => [k, String(params[k])])).toString();
  return query ? `${path}?${query}` : path;
}

async function api(path, params, body) {
  if (STATIC) {
    const key = queryKey(path, params);
    if (key in STATIC.answers) return STATIC.answers[key];
    throw new Error(STATIC.live_only.includes(path)
      ? "needs the live service: open /dashboard on a running service or `scoring dashboard`"
      : "not in this static report (it holds the default views); open the live dashboard");
  }
  const headers = {};
  const token = readToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(queryKey(path, params), {
    method: body === undefined ? "GET" : "POST", headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({ error: response.statusText }));
  if (response.status === 401) $("token-form").style.display = "inline";
  if (!response.ok) throw new Error(`${response.status}: ${payload.error || response.statusText}`);
  return payload;
}

// -- helpers of the views ----------------------------------------------------------------
function options(select, entries, selected) {
  select.replaceChildren(...entries.map(([value, label]) => {
    const option = new Option(label, value);
    option.selected = value === selected;
    return option;
  }));
}

async function draw(id, traces, layout) {
  await plotlyReady;
  const div = $(id);
  // the top margin holds plotly's toolbar (shown on hover) above the plot, not over it
  await Plotly.react(div, traces, {
    hovermode: "closest", showlegend: false, ...layout,
    margin: { l: 60, r: 20, b: 45, ...layout.margin, t: 34 },
  }, { displaylogo: false, displayModeBar: "hover", responsive: true });
  div.dataset.rendered = String(Number(div.dataset.rendered || 0) + 1);
  return div;
}

function clickable(div) {
  if (div.dataset.clickable) return;
  div.dataset.clickable = "1";
  div.on("plotly_click", (event) => {
    const point = event.points[0];
    if (point && point.customdata !== undefined) selectRow(Number(point.customdata));
  });
}

function fail(id, error) { $(id).textContent = String(error.message || error); }

function outputParam() { return state.output; }

// a static report holds one sample: it asks with the default
function maxPoints() { return STATIC ? undefined : $("max-points").value; }

function featureEntries(prefix) {
  return state.summary.features.map((f) => [prefix + f.name, f.name]);
}

function numeric(values) {
  return values.length && values.every((v) => v === null || typeof v === "number");
}

// markers coloured by a numeric value (a colour scale) or by category (a trace each, with
// a legend); rows stay in customdata for clicks
function coloredTraces(p, hovertemplate) {
  const base = { type: "scatter", mode: "markers", hovertemplate };
  if (!p.color || numeric(p.color)) {
    return [{ ...base, x: p.x, y: p.y, customdata: p.rows,
      marker: p.color ? { size: 5, color: p.color, colorscale: "RdBu", showscale: true,
        colorbar: { title: { text: p.color_label }, thickness: 12 } } : { size: 5 } }];
  }
  const groups = new Map();
  p.color.forEach((c, i) => {
    const key = c === null ? "(missing)" : String(c);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(i);
  });
  return [...groups.entries()].sort().map(([name, index]) => ({
    ...base, name, x: index.map((i) => p.x[i]), y: index.map((i) => p.y[i]),
    customdata: index.map((i) => p.rows[i]), marker: { size: 5 } }));
}

// -- global views --------------------------------------------------------------------
async function drawData() {
  try {
    const p = await api("dashboard/api/points", {
      x: $("data-x").value, y: $("data-y").value, color: $("data-color").value,
      output: outputParam(), max_points: maxPoints(),
    });
    const traces = coloredTraces(p, "row %{customdata}<br>x %{x}<br>y %{y}<extra></extra>");
    const div = await draw("data-plot", traces, { showlegend: traces.length > 1,
      xaxis: { title: { text: p.x_label } }, yaxis: { title: { text: p.y_label } } });
    $("data-note").textContent = `${p.n_shown} of ${p.n_rows} rows (uniform sample)`;
    clickable(div);
  } catch (error) { fail("error", error); }
}

let importance = null;
async function drawImportance() {
  try {
    const all = $("importance-all").checked && state.summary.outputs.length > 1;
    if (!importance || importance.all !== all || importance.output !== state.output) {
      const answers = all
        ? await Promise.all(state.summary.outputs.map((_, k) => api("dashboard/api/importance", { output: k })))
        : [await api("dashboard/api/importance", { output: state.output })];
      importance = { all, output: state.output, answers };
    }
    const k = Number($("importance-k").value);
    $("importance-k-label").textContent = k;
    const order = importance.answers[0].features.slice(0, k).reverse();
    const traces = importance.answers.map((answer) => {
      const byName = Object.fromEntries(answer.features.map((f, i) => [f, answer.values[i]]));
      return { type: "bar", orientation: "h", name: answer.output, y: order,
        x: order.map((f) => byName[f]) };
    });
    await draw("importance-plot", traces, { barmode: "group", showlegend: all,
      xaxis: { title: { text: "mean |importance|" } }, margin: { l: 140 } });
  } catch (error) { fail("error", error); }
}

async function drawDependence() {
  try {
    const feature = $("dependence-feature").value;
    const p = await api("dashboard/api/points", {
      x: `value:${feature}`, y: `importance:${feature}`, color: $("dependence-color").value,
      output: outputParam(), max_points: maxPoints(),
    });
    const traces = coloredTraces(p, "row %{customdata}<br>%{x}<br>importance %{y}<extra></extra>");
    const div = await draw("dependence-plot", traces, { showlegend: traces.length > 1,
      xaxis: { title: { text: p.x_label } }, yaxis: { title: { text: p.y_label } } });
    clickable(div);
  } catch (error) { fail("error", error); }
}

async function drawSummary() {
  try {
    const p = await api("dashboard/api/summary_points", {
      output: outputParam(), top_k: Math.min(SUMMARY_TOP, state.summary.features.length),
    });
    const k = Math.min(Number($("summary-k").value), p.features.length);
    $("summary-k-label").textContent = k;
    const traces = p.features.slice(0, k).map((feature, i) => ({
      type: "scatter", mode: "markers", x: p.importances[i], customdata: p.rows,
      // a deterministic jitter spreads each feature's points into a band
      y: p.rows.map((_, j) => k - 1 - i + (((j * 0.6180339) % 1) - 0.5) * 0.6),
      marker: { size: 4, color: p.colors[i].map((c) => (c === null ? 0.5 : c)),
        colorscale: "RdBu", cmin: 0, cmax: 1, showscale: i === 0,
        colorbar: { title: { text: "feature value" }, tickvals: [0, 1], ticktext: ["low", "high"], thickness: 12 } },
      name: feature, hovertemplate: `${feature}<br>row %{customdata}<br>importance %{x}<extra></extra>`,
    }));
    const div = await draw("summary-plot", traces, {
      xaxis: { title: { text: `importance (${p.output})` }, zeroline: true },
      yaxis: { tickvals: p.features.slice(0, k).map((_, i) => k - 1 - i),
        ticktext: p.features.slice(0, k) },
      margin: { l: 140 },
    });
    clickable(div);
  } catch (error) { fail("error", error); }
}

// -- local views ---------------------------------------------------------------------
async function selectRow(row) {
  const ticket = ++latest.row;
  try {
    const answer = await api("dashboard/api/row", { row });
    if (ticket !== latest.row) return;
    state.row = answer;
    state.values = { ...answer.values };
    $("local-row").textContent = `row ${row}`;
    $("local-row").dataset.row = String(row);
    fillWhatIf();
    await drawLocal();
  } catch (error) { fail("local-error", error); }
}

function ranked(features, values, k) {
  const order = features.map((_, i) => i).sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]));
  return order.slice(0, k);
}

async function drawLocal() {
  $("local-error").textContent = "";
  if (!state.row) return;
  let features = state.row.features;
  let values = state.row.importances[state.output];
  let expected = state.row.expected_values[state.output];
  if ($("local-engineered").checked) {
    try {
      const answer = await api("predict", undefined, { rows: [state.row.values], get_raw: false });
      features = answer.feature_names;
      values = answer.class_names ? answer.local_importance_values[state.output][0] : answer.local_importance_values[0];
      expected = answer.class_names ? answer.expected_values[state.output] : answer.expected_values;
    } catch (error) { fail("local-error", error); return; }
  }
  const k = Math.min(Number($("local-k").value), features.length);
  $("local-k-label").textContent = k;
  const top = ranked(features, values, k);
  const rest = values.reduce((s, v) => s + v, 0) - top.reduce((s, i) => s + values[i], 0);
  const names = top.map((i) => features[i]);
  const local = await draw("local-plot", [{
    type: "bar", orientation: "h", y: names.slice().reverse(), x: top.map((i) => values[i]).reverse(),
    marker: { color: top.map((i) => (values[i] >= 0 ? "#d62728" : "#1f77b4")).reverse() },
  }], { xaxis: { title: { text: `importance (${state.summary.outputs[state.output]})` } },
    margin: { l: 140 } });
  local.dataset.features = JSON.stringify(features);
  local.dataset.values = JSON.stringify(values);
  const steps = names.concat(features.length > k ? [`${features.length - k} other features`] : []);
  const deltas = top.map((i) => values[i]).concat(features.length > k ? [rest] : []);
  await draw("waterfall-plot", [{
    type: "waterfall", orientation: "h", base: expected,
    y: ["expected value", ...steps, "model output"],
    x: [0, ...deltas, 0], measure: ["absolute", ...deltas.map(() => "relative"), "total"],
    increasing: { marker: { color: "#d62728" } }, decreasing: { marker: { color: "#1f77b4" } },
    totals: { marker: { color: "#7f7f7f" } },
  }], { yaxis: { autorange: "reversed" }, margin: { l: 160 },
    xaxis: { title: { text: `expected value ${expected.toFixed(4)} to the model output` } } });
}

function fillWhatIf() {
  const form = $("whatif-form");
  form.replaceChildren(...state.summary.features.map((f) => {
    const label = document.createElement("label");
    label.textContent = f.name;
    const value = state.values[f.name];
    let input;
    if (f.kind === "categorical") {
      input = document.createElement("select");
      options(input, [["", "(missing)"], ...f.categories.map((c) => [String(c), String(c)])],
        value === null ? "" : String(value));
    } else {
      input = document.createElement("input");
      input.type = "number";
      input.step = "any";
      input.value = value === null ? "" : String(value);
    }
    input.name = f.name;
    input.addEventListener("change", () => {
      state.values[f.name] = input.value === "" ? null : (f.kind === "categorical" ? input.value : Number(input.value));
    });
    label.append(input);
    return label;
  }));
}

async function runWhatIf() {
  $("whatif-error").textContent = "";
  if (!state.values) { fail("whatif-error", "select a row first: click a point"); return; }
  const ticket = ++latest.whatif;
  try {
    const answer = await api("predict", undefined, { rows: [state.values] });
    if (ticket !== latest.whatif) return;
    const out = $("whatif-output");
    const probabilities = answer.probabilities ? answer.probabilities[0] : null;
    out.textContent = `prediction ${answer.predictions[0]}` + (probabilities
      ? `, probability of ${state.summary.outputs[state.output]} ${probabilities[state.output].toFixed(4)}` : "");
    out.dataset.prediction = JSON.stringify(answer.predictions[0]);
    out.dataset.probabilities = JSON.stringify(probabilities);
    const values = answer.class_names ? answer.local_importance_values[state.output][0] : answer.local_importance_values[0];
    const top = ranked(answer.feature_names, values, answer.feature_names.length).reverse();
    await draw("whatif-plot", [{
      type: "bar", orientation: "h", y: top.map((i) => answer.feature_names[i]), x: top.map((i) => values[i]),
      marker: { color: top.map((i) => (values[i] >= 0 ? "#d62728" : "#1f77b4")) },
    }], { xaxis: { title: { text: "importance of the edited row" } }, margin: { l: 140 } });
  } catch (error) { fail("whatif-error", error); }
}

async function runIce() {
  $("ice-error").textContent = "";
  if (!state.values) { fail("ice-error", "select a row first: click a point"); return; }
  const ticket = ++latest.ice;
  try {
    const feature = $("ice-feature").value;
    const answer = await api("dashboard/api/ice", undefined, { row: state.values, feature });
    if (ticket !== latest.ice) return;
    const y = answer.probabilities ? answer.probabilities.map((p) => p[state.output]) : answer.predictions;
    const current = state.values[feature];
    // a dotted line marks the row's own value
    const shapes = current === null ? [] : [{ type: "line", x0: current, x1: current,
      yref: "paper", y0: 0, y1: 1, line: { dash: "dot", color: "#888" } }];
    await draw("ice-plot", [
      { type: "scatter", mode: "lines+markers", x: answer.grid, y, name: "ICE" },
    ], { shapes, xaxis: { title: { text: feature } },
      yaxis: { title: { text: answer.probabilities ? `probability of ${state.summary.outputs[state.output]}` : "prediction" } } });
  } catch (error) { fail("ice-error", error); }
}

// -- wiring --------------------------------------------------------------------------
function drawGlobal() {
  importance = null;
  return Promise.all([drawData(), drawImportance(), drawDependence(), drawSummary()]);
}

async function start() {
  performance.mark("dashboard:start");
  try {
    state.summary = await api("dashboard/api/summary");
  } catch (error) { fail("error", error); return; }
  const s = state.summary;
  $("source").textContent = `${s.n_rows} explained rows (${s.method}, ${s.model_output}) from ${s.source}`;
  options($("output"), s.outputs.map((name, k) => [String(k), name]),
    String(s.outputs.length > 1 ? 1 : 0));
  state.output = Number($("output").value);
  const first = s.features[0].name;
  const axes = [["output", "model output"],
    ...(s.outputs.length > 1 ? [["predicted", "predicted class"]] : []), ...featureEntries("value:")];
  options($("data-x"), axes, `value:${first}`);
  options($("data-y"), axes, "output");
  options($("data-color"), axes, "output");
  options($("dependence-feature"), s.features.map((f) => [f.name, f.name]), first);
  options($("dependence-color"), axes, "output");
  options($("ice-feature"), s.features.map((f) => [f.name, f.name]), first);
  for (const id of ["importance-k", "summary-k", "local-k"]) {
    $(id).max = String(s.features.length);
    $(id).value = String(Math.min(10, s.features.length));
  }
  $("output").onchange = () => { state.output = Number($("output").value); drawGlobal(); drawLocal(); };
  $("max-points").onchange = () => { drawData(); drawDependence(); };
  for (const id of ["data-x", "data-y", "data-color"]) $(id).onchange = drawData;
  for (const id of ["dependence-feature", "dependence-color"]) $(id).onchange = drawDependence;
  $("importance-k").oninput = drawImportance;
  $("importance-all").onchange = drawImportance;
  $("summary-k").oninput = drawSummary;
  $("local-k").oninput = drawLocal;
  $("local-engineered").onchange = drawLocal;
  $("whatif-run").onclick = runWhatIf;
  $("ice-run").onclick = runIce;
  // offered only when the service can explain a row per engineered column
  $("local-engineered").parentElement.hidden = !s.engineered;
  if (STATIC) {
    for (const id of ["whatif-run", "ice-run", "local-engineered"]) $(id).disabled = true;
    $("max-points").parentElement.hidden = true;
    for (const id of ["whatif-error", "ice-error"]) $(id).textContent = STATIC.live_note;
  }
  await drawGlobal();
  performance.mark("dashboard:global-drawn");  // what bench/dashboard.py reads
  // the local views start on the first sampled row (drawn in every view), not empty,
  // unless a point was clicked meanwhile
  if (latest.row === 0) await selectRow(s.first_row);
  if (!STATIC && state.values) await Promise.all([runWhatIf(), runIce()]);
  document.body.dataset.started = "1";  // every view drawn: what the browser tests wait for
}

$("token-form").onsubmit = (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
  $("token-form").style.display = "none";
  $("error").textContent = "";
  start();
};
start();
