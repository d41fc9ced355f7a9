// pyllmattr explorer: the page's script (no build step, no libraries).
// Every text from the user or the model goes into the page through textContent; the
// one HTML fragment inserted, the highlighted prompt, is rendered and escaped by
// pyllmattr/render.py on the server.
"use strict";

const TOKEN = document.querySelector('meta[name="pyllmattr-token"]').content;
const POLL_MS = 200;
const $ = (id) => document.getElementById(id);
const state = { config: null, current: null, history: [] };

async function api(path, options = {}) {
  const headers = { "x-pyllmattr-token": TOKEN, ...(options.headers || {}) };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: response.statusText }; }
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { status: response.status });
  return body;
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// The colours of render.py: blue raises the target, red lowers it.
function color(value, limit) {
  const strength = limit > 0 ? Math.min(Math.abs(value) / limit, 1) : 0;
  const rgb = value >= 0 ? "33,102,172" : "178,24,43";
  return `rgba(${rgb},${(0.85 * strength).toFixed(3)})`;
}

function shortLabel(text, limit = 24) {
  const flat = text.split(/\s+/).filter(Boolean).join(" ") || JSON.stringify(text);
  return flat.length <= limit ? flat : flat.slice(0, limit - 1) + "…";
}

// ------------------------------------------------------------------ the form

function currentMode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function updateForm() {
  const mode = currentMode();
  const features = $("features");
  const wanted = mode === "context" ? state.config.context_features : state.config.features;
  const keep = features.value;
  if ([...features.options].map((o) => o.value).join() !== wanted.join()) {
    features.replaceChildren(...wanted.map((f) => el("option", { value: f, text: f })));
    features.value = wanted.includes(keep) ? keep : (mode === "context" ? "sentence" : "word");
  }
  offerMethods(mode);
  const template = mode === "prompt" && features.value === "template";
  $("prompt-fields").hidden = mode !== "prompt" || template;
  $("context-fields").hidden = mode !== "context";
  $("template-fields").hidden = !template;
  $("max-new-tokens-label").hidden = $("target").value !== "";
  renderOptions();
}

// The context methods (hierarchical, context-cite) are offered in the context mode only.
function offerMethods(mode) {
  const select = $("method");
  const offered = state.config.methods.filter((m) => m.modes.includes(mode));
  const keep = select.value;
  if ([...select.options].map((o) => o.value).join() === offered.map((m) => m.name).join()) return;
  select.replaceChildren(...offered.map((m) => el("option", { value: m.name, text: `${m.name} (${m.class})` })));
  select.value = offered.some((m) => m.name === keep) ? keep : "feature-ablation";
}

function renderOptions() {
  const method = state.config.methods.find((m) => m.name === $("method").value);
  const box = $("options");
  if (box.dataset.method === method.name) return;
  box.dataset.method = method.name;
  box.replaceChildren(...Object.entries(method.options).map(([name, value]) => {
    if (typeof value === "boolean") {  // a flag (shapley-sampling's screen): a checkbox
      const flag = el("input", { type: "checkbox", name, "data-kind": "boolean" });
      flag.checked = value;
      return el("label", {}, [name + " ", flag]);
    }
    const type = typeof value === "number" ? "number" : "text";
    const input = el("input", { type, name, value: String(value), "data-kind": typeof value });
    if (type === "number") input.step = Number.isInteger(value) ? "1" : "any";
    return el("label", {}, [name + " ", input]);
  }));
}

function parseSlots(text) {
  const slots = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 0) throw new Error(`"${line.trim()}": write each slot as name = value`);
    slots[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return slots;
}

function numberOrNull(id) {
  const value = $(id).value.trim();
  return value === "" ? null : Number(value);
}

function request() {
  const features = $("features").value;
  const body = {
    model: $("model").value,
    fast: $("fast").checked,
    mode: currentMode(),
    features,
    method: $("method").value,
    target: $("target").value,
    max_new_tokens: numberOrNull("max-new-tokens"),
    seed: numberOrNull("seed"),
    num_trials: numberOrNull("num-trials"),
    chat: $("chat").checked,
    system: $("system").value,
    chat_template: $("chat-template").value,
    baseline: $("baseline").value === "" ? null : $("baseline").value,
    options: {},
  };
  for (const input of $("options").querySelectorAll("input")) {
    const kind = input.dataset.kind;
    if (kind === "boolean") body.options[input.name] = input.checked;
    else body.options[input.name] = kind === "number" ? Number(input.value) : input.value;
  }
  if (body.mode === "context") {
    body.context = $("context").value;
    body.question = $("question").value;
  } else if (features === "template") {
    body.template = $("template").value;
    body.values = parseSlots($("values").value);
    body.baselines = parseSlots($("baselines").value);
  } else {
    body.prompt = $("prompt").value;
  }
  return body;
}

// ------------------------------------------------------------------ running

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setRunning(running) {
  $("run").disabled = running;
  $("cancel").disabled = !running;
  $("progress-box").hidden = !running;
}

async function explain(event) {
  event.preventDefault();
  showError("");
  let body;
  try { body = request(); } catch (e) { showError(e.message); return; }
  let run;
  try {
    run = await api("/api/runs", { method: "POST", body: JSON.stringify(body) });
  } catch (e) {
    showError(e.message);
    return;
  }
  state.current = run.id;
  setRunning(true);
  showProgress(run);
  await poll(run.id, body);
}

async function poll(id, body) {
  while (true) {
    let run;
    try { run = await api(`/api/runs/${id}`); } catch (e) { showError(e.message); break; }
    showProgress(run);
    if (run.state === "done") { finished(run, body); break; }
    if (run.state === "error" || run.state === "cancelled") {
      showError(run.state === "cancelled" ? "cancelled" : run.error);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  if (state.current === id) { state.current = null; setRunning(false); }
}

function showProgress(run) {
  const bar = $("progress");
  bar.max = Math.max(run.total, 1);
  bar.value = run.done;
  const what = { queued: "queued", loading: "loading the model", generating: "generating the target",
    scoring: "scoring" }[run.state] || run.state;
  const count = run.total ? ` ${run.done} / ${run.total} tokens` : "";
  $("progress-text").textContent = `${what}${count} · ${run.seconds.toFixed(1)} s`;
}

async function cancel() {
  if (state.current === null) return;
  $("cancel").disabled = true;
  try { await api(`/api/runs/${state.current}/cancel`, { method: "POST" }); } catch (e) { showError(e.message); }
}

function finished(run, body) {
  const entry = { id: run.id, run, body, result: run.result };
  state.history.push(entry);
  showResult(entry);
  addToHistory(entry);
}

// ------------------------------------------------------------------ results

function summaryText(entry) {
  const r = entry.result;
  const stats = r.stats || {};
  const parts = [
    `log p(target) = ${r.target_logprob.toFixed(3)}`,
    r.noise_floor === null ? "no noise floor" :
      (r.noise_floor === 0 ? "noise floor 0 (batch-invariant)" : `noise floor ±${r.noise_floor.toFixed(4)}`),
    `${stats.n_evaluations} prompts scored`,
    `${stats.n_decoded} tokens decoded (one by one: ${stats.n_naive})`,
    `${entry.run.seconds.toFixed(2)} s (scoring ${(stats.seconds || 0).toFixed(2)} s)`,
  ];
  return parts.join(" · ");
}

function showResult(entry) {
  const r = entry.result;
  $("result").hidden = false;
  $("result").dataset.run = entry.id;
  $("result-title").textContent = `Run ${entry.id}: ${r.method} on ${entry.body.model}`;
  $("summary").textContent = summaryText(entry);
  $("highlight").innerHTML = entry.run.html;  // rendered and escaped by pyllmattr/render.py
  $("download-json").href = `/runs/${entry.id}.json`;
  $("download-html").href = `/runs/${entry.id}.html`;
  $("heatmap").replaceChildren(heatmap(r));
  $("ranking").replaceChildren(...ranking(r, entry.run.below_noise));
}

function heatmap(r) {
  if (!r.token_attr) return el("p", { text: "this method gives no per-token attributions" });
  const values = r.token_attr;
  const limit = Math.max(...values.flat().map(Math.abs)) || 1;
  const head = el("tr", {}, [el("th", { text: "target \\ feature" }),
    ...r.input_features.map((f) => el("th", { text: shortLabel(f, 14), title: f }))]);
  const rows = values.map((row, t) => el("tr", {}, [
    el("th", { text: JSON.stringify(r.output_tokens[t]) }),
    ...row.map((v, i) => el("td", {
      text: v.toFixed(2), title: `${r.output_tokens[t]} ← ${r.input_features[i]}: ${v.toFixed(4)}`,
      style: `background:${color(v, limit)}`, dataset: { row: t, col: i, value: v },
    })),
  ]));
  return el("table", { class: "heatmap" }, [el("thead", {}, [head]), el("tbody", {}, rows)]);
}

function ranking(r, quiet) {
  const order = r.seq_attr.map((v, i) => i).sort((a, b) => Math.abs(r.seq_attr[b]) - Math.abs(r.seq_attr[a]));
  const limit = Math.max(...r.seq_attr.map(Math.abs)) || 1;
  const head = el("tr", {}, ["rank", "feature", "attribution", ""].map((h) => el("th", { text: h })));
  const rows = order.map((i, rank) => {
    const v = r.seq_attr[i];
    const bar = el("span", { class: "bar", style: `width:${(100 * Math.abs(v) / limit).toFixed(1)}%;background:${color(v, limit)}` });
    return el("tr", { dataset: { feature: i, value: v }, class: quiet && quiet[i] ? "quiet" : "" }, [
      el("td", { text: String(rank + 1) }),
      el("td", { class: "feature", text: r.input_features[i], title: r.input_features[i] }),
      el("td", { class: "value", text: (v >= 0 ? "+" : "") + v.toFixed(4) + (quiet && quiet[i] ? "~" : "") }),
      el("td", { class: "bar-cell" }, [bar]),
    ]);
  });
  const note = el("caption", { text: r.noise_floor ? `~ within the noise floor ±${r.noise_floor.toFixed(4)}` : "" });
  return [note, el("thead", {}, [head]), el("tbody", {}, rows)];
}

// ------------------------------------------------------------------ history

function addToHistory(entry) {
  $("history-box").hidden = false;
  const b = entry.body;
  const text = b.prompt || b.context || b.template || "";
  const pick = el("input", { type: "checkbox", value: String(entry.id), "aria-label": `compare run ${entry.id}` });
  const open = el("button", { type: "button", class: "link", text: `Run ${entry.id}` });
  open.addEventListener("click", () => showResult(entry));
  const item = el("li", { dataset: { run: entry.id } }, [pick, " ", open,
    el("span", { class: "meta", text: ` ${entry.result.method} · ${b.features} · ${b.model} · ` }),
    el("span", { class: "excerpt", text: shortLabel(text, 60) }),
    el("span", { class: "meta", text: ` → ${JSON.stringify(entry.result.output_tokens.join(""))}` })]);
  $("history").prepend(item);
}

function compare() {
  const chosen = [...$("history").querySelectorAll("input:checked")].map((c) => Number(c.value));
  const entries = state.history.filter((e) => chosen.includes(e.id));
  $("comparison").replaceChildren(...entries.map((entry) => {
    const view = el("div", { class: "panel" });
    view.innerHTML = entry.run.html;  // rendered and escaped by pyllmattr/render.py
    const table = el("table", { class: "ranking" }, ranking(entry.result, entry.run.below_noise));
    return el("div", { class: "column", dataset: { run: entry.id } }, [
      el("h3", { text: `Run ${entry.id}: ${entry.result.method}, ${entry.body.features}` }),
      el("p", { class: "meta", text: summaryText(entry) }), view, table]);
  }));
  $("comparison").className = entries.length ? "columns" : "";
}

// ------------------------------------------------------------------ start

async function start() {
  try {
    const [config, models] = await Promise.all([api("/api/config"), api("/api/models")]);
    state.config = config;
    const rows = models.models.length ? models.models : [{ reference: models.default }];
    $("model").replaceChildren(...rows.map((m) => el("option", {
      value: m.reference,
      text: m.error ? `${m.reference} (unreadable)` :
        `${m.reference} — ${m.architecture ?? "?"} ${m.parameters ?? ""} ${m.quantization ?? ""} · ctx ${m.context ?? "?"}`,
    })));
    $("model").value = models.default;
    $("chat-template").append(...config.chat_templates.map((t) => el("option", { value: t, text: t })));
  } catch (e) {
    showError(`cannot reach the pyllmattr server: ${e.message}`);
    return;
  }
  for (const input of document.querySelectorAll('input[name="mode"], #features, #method, #target')) {
    input.addEventListener("change", updateForm);
    input.addEventListener("input", updateForm);
  }
  $("form").addEventListener("submit", explain);
  $("cancel").addEventListener("click", cancel);
  $("compare").addEventListener("click", compare);
  updateForm();
  document.body.dataset.ready = "true";
}

start();
