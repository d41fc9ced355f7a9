// pyllmattr explorer: the page's script (no build step, no libraries).
// Every text from the user or the model goes into the page through textContent; the
// one HTML fragment inserted, the highlighted prompt, is rendered and escaped by
// pyllmattr/render.py on the server.
"use strict";

const TOKEN = document.querySelector('meta[name="pyllmattr-token"]').content;
const POLL_MS = 200;
const $ = (id) => document.getElementById(id);
// history: entries { id, form, method, output, full } oldest first; full is the run's
// status with its result, fetched when the entry is first shown (a reload lists the
// server's runs without their results).
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

function currentMethod() {
  return state.config.methods.find((m) => m.name === $("method").value);
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
  // Gradient methods run on PyTorch: the fast layout (llama.cpp's) does not apply.
  const gradients = currentMethod().needs_gradients;
  $("fast").disabled = gradients;
  if (gradients) $("fast").checked = false;
  $("method-note").textContent = gradients ?
    "runs on PyTorch: the model is loaded from the same GGUF file, dequantized to float32" : "";
}

// The context methods (hierarchical, context-cite) are offered in the context mode only;
// gradient methods in a group of their own, disabled (with the reason) without the torch extra.
function offerMethods(mode) {
  const select = $("method");
  const offered = state.config.methods.filter((m) => m.modes.includes(mode));
  const keep = select.value;
  const names = offered.map((m) => m.name).join();
  if (select.dataset.offered === names) return;
  select.dataset.offered = names;
  const option = (m) => {
    const props = { value: m.name, text: `${m.name} (${m.class})` + (m.unavailable ? " — needs the torch extra" : "") };
    if (m.unavailable) Object.assign(props, { disabled: "", title: m.unavailable });
    return el("option", props);
  };
  const groups = [
    ["perturbation (llama.cpp)", offered.filter((m) => !m.needs_gradients)],
    ["gradients (PyTorch, from the same GGUF)", offered.filter((m) => m.needs_gradients)],
  ].filter(([, members]) => members.length);
  select.replaceChildren(...groups.map(([label, members]) => el("optgroup", { label }, members.map(option))));
  const usable = offered.filter((m) => !m.unavailable);
  select.value = usable.some((m) => m.name === keep) ? keep : "feature-ablation";
}

function renderOptions() {
  const method = currentMethod();
  const box = $("options");
  if (box.dataset.method === method.name) return;
  box.dataset.method = method.name;
  box.replaceChildren(...Object.entries(method.options).map(([name, value]) => {
    if (typeof value === "boolean") {  // a flag (shapley-sampling's screen): a checkbox
      const flag = el("input", { type: "checkbox", name, "data-kind": "boolean" });
      flag.checked = value;
      return el("label", {}, [name + " ", flag]);
    }
    if (method.auto_options.includes(name)) {  // a point count that also takes "auto"
      const input = el("input", { type: "text", name, value: String(value), "data-kind": "auto",
        placeholder: "a number, or auto", title: "auto: doubled until the values settle" });
      return el("label", {}, [name + " ", input]);
    }
    const type = typeof value === "number" ? "number" : "text";
    const input = el("input", { type, name, value: String(value), "data-kind": typeof value });
    if (type === "number") input.step = Number.isInteger(value) ? "1" : "any";
    if (value === "") input.placeholder = "the method's default";
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
    contrast: $("contrast").value,
    evaluate: $("evaluate").checked,
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
    const text = input.value.trim();
    if (kind === "boolean") body.options[input.name] = input.checked;
    else if (kind === "auto") body.options[input.name] = text === "auto" ? "auto" : Number(text);
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
    scoring: "scoring", evaluating: "measuring faithfulness" }[run.state] || run.state;
  const count = run.total ? ` ${run.done} / ${run.total} tokens` : "";
  $("progress-text").textContent = `${what}${count} · ${run.seconds.toFixed(1)} s`;
}

async function cancel() {
  if (state.current === null) return;
  $("cancel").disabled = true;
  try { await api(`/api/runs/${state.current}/cancel`, { method: "POST" }); } catch (e) { showError(e.message); }
}

function finished(run, form) {
  const entry = { id: run.id, form, method: run.result.method,
    output: run.result.output_tokens.join(""), full: run };
  state.history.push(entry);
  showResult(entry);
  addToHistory(entry);
}

// An entry's run with its result (fetched once: a reload lists runs without results).
async function loaded(entry) {
  if (!entry.full) entry.full = await api(`/api/runs/${entry.id}`);
  return entry.full;
}

// ------------------------------------------------------------------ results

// What the run computed: prompts and tokens on llama.cpp, path points and passes on PyTorch.
function workDone(stats) {
  if (stats.n_forward_calls !== undefined) {
    return [`${stats.n_evaluations} points in ${stats.n_forward_calls} forward and ` +
      `${stats.n_backward_calls} backward passes (${stats.device})`];
  }
  const parts = [`${stats.n_evaluations} prompts scored`];
  if (stats.n_decoded !== undefined) parts.push(`${stats.n_decoded} tokens decoded (one by one: ${stats.n_naive})`);
  return parts;
}

function summaryText(entry) {
  const run = entry.full;
  const r = run.result;
  const stats = r.stats || {};
  const parts = [
    `log p(target) = ${r.target_logprob.toFixed(3)}`,
    ...(r.contrast_tokens ? [`rather than ${JSON.stringify(r.contrast_tokens.join(""))}: ` +
      `log p = ${r.contrast_logprob.toFixed(3)}`] : []),
    r.noise_floor === null ? "no noise floor" :
      (r.noise_floor === 0 ? "noise floor 0 (batch-invariant)" : `noise floor ±${r.noise_floor.toFixed(4)}`),
    ...workDone(stats),
    `${run.seconds.toFixed(2)} s (scoring ${(stats.seconds || 0).toFixed(2)} s)`,
    ...(run.convergence ? [run.convergence] : []),
    ...(r.faithfulness && r.faithfulness.lds !== null ? [`LDS ${r.faithfulness.lds.toFixed(2)}`] : []),
  ];
  return parts.join(" · ");
}

async function showResult(entry) {
  const run = await loaded(entry);
  const r = run.result;
  $("result").hidden = false;
  $("result").dataset.run = entry.id;
  $("result-title").textContent = `Run ${entry.id}: ${r.method} on ${run.model}`;
  $("summary").textContent = summaryText(entry);
  $("notes").textContent = run.notes.join("; ");
  $("notes").hidden = !run.notes.length;
  $("highlight").innerHTML = run.html;  // rendered and escaped by pyllmattr/render.py
  $("download-json").href = `/runs/${entry.id}.json`;
  $("download-html").href = `/runs/${entry.id}.html`;
  $("heatmap").replaceChildren(heatmap(r));
  $("ranking").replaceChildren(...ranking(r, run.below_noise));
}

function heatmap(r) {
  if (!r.token_attr) return el("p", { text: "this method gives no per-token attributions" });
  const values = r.token_attr;
  const limit = Math.max(...values.flat().map(Math.abs)) || 1;
  const rows_are = r.token_attr_of === "difference" ? "target − contrast token" : "target";
  const head = el("tr", {}, [el("th", { text: `${rows_are} \\ feature` }),
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
  const f = entry.form;
  const text = f.prompt || f.context || f.template || "";
  const rather = f.contrast ? ` rather than ${JSON.stringify(f.contrast)}` : "";
  const pick = el("input", { type: "checkbox", value: String(entry.id), "aria-label": `compare run ${entry.id}` });
  const open = el("button", { type: "button", class: "link", text: `Run ${entry.id}` });
  open.addEventListener("click", () => showResult(entry).catch((e) => showError(e.message)));
  const remove = el("button", { type: "button", class: "link delete", text: "delete",
    "aria-label": `delete run ${entry.id}` });
  const item = el("li", { dataset: { run: entry.id } }, [pick, " ", open,
    el("span", { class: "meta", text: ` ${entry.method} · ${f.features || "word"} · ${f.model || ""} · ` }),
    el("span", { class: "excerpt", text: shortLabel(text, 60) }),
    el("span", { class: "meta", text: ` → ${JSON.stringify(entry.output)}${rather} ` }), remove]);
  remove.addEventListener("click", () => deleteRun(entry, item).catch((e) => showError(e.message)));
  $("history").prepend(item);
}

// Deleting a run forgets it on the server too (and its file in a --history folder).
async function deleteRun(entry, item) {
  const answer = await api(`/api/runs/${entry.id}`, { method: "DELETE" });
  state.history = state.history.filter((e) => e.id !== entry.id);
  item.remove();
  $("comparison").querySelector(`[data-run="${entry.id}"]`)?.remove();
  $("history-box").hidden = state.history.length === 0;
  if (answer.problem) showError(`run ${entry.id} is deleted here, but its file stays: ${answer.problem}`);
}

async function compare() {
  const chosen = [...$("history").querySelectorAll("input:checked")].map((c) => Number(c.value));
  const entries = state.history.filter((e) => chosen.includes(e.id));
  try { await Promise.all(entries.map(loaded)); } catch (e) { showError(e.message); return; }
  $("comparison").replaceChildren(...entries.map((entry) => {
    const run = entry.full;
    const view = el("div", { class: "panel" });
    view.innerHTML = run.html;  // rendered and escaped by pyllmattr/render.py
    const table = el("table", { class: "ranking" }, ranking(run.result, run.below_noise));
    return el("div", { class: "column", dataset: { run: entry.id } }, [
      el("h3", { text: `Run ${entry.id}: ${entry.method}, ${entry.form.features || "word"}` }),
      el("p", { class: "meta", text: summaryText(entry) }), view, table]);
  }));
  $("comparison").className = entries.length ? "columns" : "";
}

// After a reload: the server's runs come back into the history, the newest result is
// shown, and a run still working is followed again (its progress, Cancel).
async function restoreHistory() {
  const { runs } = await api("/api/runs");
  for (const run of runs.filter((r) => r.state === "done")) {
    const entry = { id: run.id, form: run.form, method: run.method, output: run.output, full: null };
    state.history.push(entry);
    addToHistory(entry);
  }
  const working = runs.filter((r) => !["done", "error", "cancelled"].includes(r.state)).pop();
  if (working) {
    state.current = working.id;
    setRunning(true);
    showProgress(working);
    poll(working.id, working.form);
  } else if (state.history.length) {
    await showResult(state.history[state.history.length - 1]);
  }
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
  try { await restoreHistory(); } catch (e) { showError(`cannot read the runs back: ${e.message}`); }
  document.body.dataset.ready = "true";
}

start();
