// seamtape report: renders the document in #seamtape-data (a report file) or fetched from
// the live server. Everything from a tape reaches the page as text nodes (never as markup),
// and the page's Content-Security-Policy lets no other script run.
"use strict";
(function () {
  const CONFIG = JSON.parse(document.getElementById("seamtape-config").textContent);
  const LIVE = CONFIG.mode === "live";
  const $ = (id) => document.getElementById(id);
  const state = { data: null, tape: 0, run: null, step: 0, search: "", tab: "step", diff: 0, raw: false };
  const memo = new WeakMap(); // run -> Map(index -> full message list)
  const bodyCache = new Map();

  // -- building elements (text only) -----------------------------------------------------
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "data") for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
      else if (key === "style") for (const [k, v] of Object.entries(value)) el.style[k] = v;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (/^(id|title|type|value|placeholder|href|tabindex|hidden|open|role|colspan|checked)$/.test(key)) el.setAttribute(key, value === true ? "" : String(value));
      else throw new Error("unexpected attribute " + key);
    }
    append(el, children);
    return el;
  }
  function append(el, ...children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  const fmtCost = (c) => (c === null || c === undefined ? "—" : "$" + (c < 0.01 ? c.toFixed(6) : c.toFixed(4)));
  const fmtMs = (ms) => (ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms");
  const slug = (s) => String(s).replace(/[^a-z0-9]+/gi, "-").toLowerCase();
  const pretty = (v) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));

  // -- the document ----------------------------------------------------------------------
  function tapeDoc() { return state.data.tapes[state.tape]; }
  function runsOf(tape) { return state.data.tapes[tape].runs; }
  function findRun(tape, id) { return runsOf(tape).find((r) => r.id === id) || null; }
  function currentRun() { return findRun(state.tape, state.run); }
  function currentStep() { const run = currentRun(); return run && run.steps ? run.steps[state.step] || null : null; }

  function fullMessages(run, index) {
    let cache = memo.get(run);
    if (!cache) { cache = new Map(); memo.set(run, cache); }
    if (cache.has(index)) return cache.get(index);
    const decoded = run.steps[index].decoded;
    let out = decoded.messages;
    if (decoded.shared > 0) {
      let j = index - 1;
      while (j >= 0 && !run.steps[j].decoded) j--;
      out = j >= 0 ? fullMessages(run, j).slice(0, decoded.shared).concat(decoded.messages) : decoded.messages;
    }
    cache.set(index, out);
    return out;
  }

  function searchText(step) {
    if (step._text === undefined) {
      const parts = [step.model, step.stop, step.url, step.tools.join(" "), step.note];
      const d = step.decoded;
      if (d) {
        parts.push(d.text, d.error_type);
        for (const c of d.tool_calls) parts.push(c.name, JSON.stringify(c.arguments), c.raw_arguments || "");
        for (const m of d.messages) {
          parts.push(m.text);
          for (const c of m.tool_calls || []) parts.push(c.name, JSON.stringify(c.arguments));
          for (const r of m.tool_results || []) parts.push(r.content);
        }
        if (d.shared === 0) parts.push(d.system);
      }
      step._text = parts.join("\n").toLowerCase();
    }
    return step._text;
  }

  // -- bodies, decoded on demand ---------------------------------------------------------
  function b64bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  async function pieceBytes(piece) {
    if (piece.t !== undefined) return new TextEncoder().encode(piece.t);
    if (piece.b64 !== undefined) return b64bytes(piece.b64);
    const stream = new Blob([b64bytes(piece.gz)]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  async function bodyBytes(run, index, which) {
    const key = run.id + "/" + index + "/" + which;
    if (bodyCache.has(key)) return bodyCache.get(key);
    const body = run.steps[index].raw[which];
    let out;
    if (body.whole) out = await pieceBytes(body.whole);
    else {
      const base = await bodyBytes(run, body.base, "request_body");
      const mid = await pieceBytes(body.mid);
      out = new Uint8Array(body.size);
      out.set(base.subarray(0, body.prefix), 0);
      out.set(mid, body.prefix);
      out.set(base.subarray(base.length - body.suffix), body.prefix + mid.length);
    }
    if (bodyCache.size > 64) bodyCache.delete(bodyCache.keys().next().value);
    bodyCache.set(key, out);
    return out;
  }
  function bytesText(bytes) {
    const text = new TextDecoder("utf-8").decode(bytes);
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  // -- the URL fragment ------------------------------------------------------------------
  function readFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const tape = Number(params.get("tape") || 0);
    if (!state.data.tapes[tape]) return false;
    const run = params.get("run");
    if (!run || !findRun(tape, run)) return false;
    state.tape = tape;
    state.run = run;
    const seq = Number(params.get("step") || 0);
    const steps = findRun(tape, run).steps || [];
    const index = steps.findIndex((s) => s.seq === seq);
    state.step = index >= 0 ? index : 0;
    return true;
  }
  function writeFragment() {
    const params = new URLSearchParams();
    if (state.tape) params.set("tape", String(state.tape));
    params.set("run", state.run);
    const step = currentStep();
    if (step) params.set("step", String(step.seq));
    const hash = "#" + params.toString();
    if (location.hash !== hash) {
      try { history.replaceState(null, "", hash); } catch (e) { location.hash = hash; }
    }
  }

  // -- selection -------------------------------------------------------------------------
  function select(tape, run, index, opts) {
    const changedRun = tape !== state.tape || run !== state.run;
    state.tape = tape; state.run = run; state.step = Math.max(0, index || 0); state.raw = false;
    if (changedRun) { renderTree(); renderTimeline(); }
    else markSelected();
    renderDetail();
    renderBlame();
    if (opts && opts.tab) showTab(opts.tab);
    writeFragment();
    const row = document.querySelector('#steps .step.selected');
    if (row && !(opts && opts.noScroll)) row.scrollIntoView({ block: "nearest" });
  }
  function selectSeq(tape, runId, seq, tab) {
    const run = findRun(tape, runId);
    if (!run || !run.steps) return;
    const index = run.steps.findIndex((s) => s.seq === seq);
    select(tape, runId, index >= 0 ? index : 0, { tab: tab || "step" });
  }
  function move(delta) {
    const run = currentRun();
    if (!run || !run.steps || !run.steps.length) return;
    let i = state.step;
    for (;;) {
      i += delta;
      if (i < 0 || i >= run.steps.length) return;
      if (!state.search || searchText(run.steps[i]).includes(state.search)) break;
    }
    select(state.tape, state.run, i, { tab: "step" });
  }

  // -- header ----------------------------------------------------------------------------
  function renderHeader() {
    const run = currentRun();
    const tape = tapeDoc();
    $("title").textContent = tape.label + (run ? " · run " + run.id + (run.name ? " (" + run.name + ")" : "") : "");
    document.title = "seamtape · " + tape.label;
    $("totals").textContent = run && run.steps
      ? run.steps.length + " steps · " + run.tokens.input + " in / " + run.tokens.output + " out tokens · " + fmtCost(run.cost_usd)
      : "";
  }

  // -- the runs tree ---------------------------------------------------------------------
  function renderTree() {
    const root = clear($("run-tree"));
    state.data.tapes.forEach((tape, t) => {
      const children = new Map();
      const ids = new Set(tape.runs.map((r) => r.id));
      const roots = [];
      for (const run of tape.runs) {
        if (run.parent && ids.has(run.parent)) {
          if (!children.has(run.parent)) children.set(run.parent, []);
          children.get(run.parent).push(run);
        } else roots.push(run);
      }
      const list = state.data.tapes.length > 1 ? h("ul") : root;
      if (state.data.tapes.length > 1) root.appendChild(h("li", {}, h("strong", {}, tape.label), list));
      for (const run of roots) list.appendChild(treeItem(t, run, children));
      if (!tape.runs.length) list.appendChild(h("li", { class: "empty" }, "no runs yet"));
    });
  }
  function treeItem(t, run, children) {
    const kids = children.get(run.id) || [];
    const label = h("div", {
      class: "run" + (t === state.tape && run.id === state.run ? " selected" : ""),
      data: { run: run.id, tape: t },
      onclick: () => select(t, run.id, 0, { tab: "step" }),
    },
      h("span", { class: "rid" }, run.id),
      run.name ? h("span", { class: "name", title: run.name }, run.name) : null,
      run.parent ? h("span", { class: "meta" }, "@ step " + run.fork_step + (run.mutation ? " · " + (run.mutation.kind || "") : "")) : null,
      h("span", { class: "badge " + slug(run.status) }, run.status),
      run.outcome ? h("span", { class: "badge " + slug(run.outcome) }, run.outcome) : null,
      h("span", { class: "meta" }, run.step_count + " steps"),
    );
    const item = h("li", {}, label);
    if (kids.length) {
      const shown = kids.length > 12 ? kids.slice(0, 12) : kids;
      const ul = h("ul", {}, shown.map((k) => treeItem(t, k, children)));
      if (kids.length > shown.length) {
        const more = h("li", { class: "link" }, "… " + (kids.length - shown.length) + " more forks");
        more.addEventListener("click", () => { more.remove(); append(ul, kids.slice(12).map((k) => treeItem(t, k, children))); });
        ul.appendChild(more);
      }
      item.appendChild(ul);
    }
    return item;
  }

  // -- the timeline ----------------------------------------------------------------------
  function blameFor(runId) {
    const b = state.data.blame;
    if (!b || b.run_id !== runId || state.tape !== 0) return new Map();
    return new Map(b.steps.map((s) => [s.step, s]));
  }
  function lintFor(runId) {
    const byStep = new Map();
    if (state.tape !== 0) return byStep;
    const selected = state.data.selected.run;
    for (const f of state.data.lint) {
      if ((f.run || selected) !== runId) continue;
      for (const s of f.steps) { if (!byStep.has(s)) byStep.set(s, []); byStep.get(s).push(f); }
    }
    return byStep;
  }
  function renderTimeline() {
    const list = clear($("steps"));
    const run = currentRun();
    const summary = clear($("run-summary"));
    renderHeader();
    if (!run) { summary.textContent = "no run selected"; return; }
    if (!run.steps) { summary.textContent = "This run's steps are not in the report: make one with --run " + run.id; return; }
    append(summary,
      "run " + run.id + " · " + run.status + (run.outcome ? " · outcome " + run.outcome : "") +
      (run.parent ? " · forked from " + run.parent + " at step " + run.fork_step : ""),
      run.result !== null ? h("div", { class: "mono" }, "result: " + run.result) : null);
    const blame = blameFor(run.id);
    const lint = lintFor(run.id);
    const end = Math.max(1, ...run.steps.map((s) => s.start_ms + s.ms));
    const frag = document.createDocumentFragment();
    run.steps.forEach((s, i) => {
      const b = blame.get(s.seq);
      const findings = lint.get(s.seq) || [];
      const what = s.provider
        ? [s.model || s.provider, " ", h("span", { class: "badge" }, s.stop || "?"),
          s.tools.length ? [" ", h("span", { class: "tool" }, "→ " + s.tools.join(", "))] : null]
        : [h("span", { class: "err" }, s.status ? "HTTP " + s.status : "no response"), " ", s.url];
      frag.appendChild(h("li", {
        class: "step" + (i === state.step ? " selected" : ""),
        data: { seq: s.seq, index: i },
        onclick: () => select(state.tape, run.id, i, { tab: "step", noScroll: true }),
      },
        h("span", { class: "seq" }, String(s.seq)),
        h("span", { class: "what" }, what,
          b ? [" ", h("span", { class: "badge " + slug(b.verdict), title: "blame" }, b.verdict)] : null,
          findings.length ? [" ", h("span", { class: "badge lint-" + worst(findings), title: findings.map((f) => f.rule).join(", ") }, findings.length + " lint")] : null),
        h("span", { class: "nums" }, s.tokens.input + "/" + s.tokens.output + " · " + fmtCost(s.cost) + " · " + fmtMs(s.ms)),
        h("span", { class: "gantt" }, h("i", { style: { left: (100 * s.start_ms / end) + "%", width: (100 * s.ms / end) + "%" } })),
      ));
    });
    list.appendChild(frag);
    applySearch();
  }
  function worst(findings) {
    for (const level of ["error", "warning", "info"]) if (findings.some((f) => f.severity === level)) return level;
    return "info";
  }
  function markSelected() {
    for (const el of document.querySelectorAll("#steps .step.selected")) el.classList.remove("selected");
    const el = document.querySelector('#steps .step[data-index="' + state.step + '"]');
    if (el) el.classList.add("selected");
  }

  // -- search ----------------------------------------------------------------------------
  function applySearch() {
    const run = currentRun();
    const rows = document.querySelectorAll("#steps .step");
    let hits = 0;
    rows.forEach((row) => {
      const step = run.steps[Number(row.dataset.index)];
      const hit = !!state.search && searchText(step).includes(state.search);
      hits += hit;
      row.classList.toggle("match", hit);
      row.classList.toggle("hidden", !!state.search && !hit);
    });
    $("search-count").textContent = state.search ? hits + " of " + rows.length + " steps" : "";
  }

  // -- the selected step -----------------------------------------------------------------
  function renderDetail() {
    const pane = clear($("step-pane"));
    const run = currentRun();
    const step = currentStep();
    if (!run || !step) { pane.appendChild(h("p", { class: "empty" }, run && !run.steps ? "This run's steps are not in this report." : "No step.")); return; }
    const d = step.decoded;
    pane.appendChild(h("h3", { id: "step-title" }, "Step " + step.seq + " · " + (step.provider ? step.provider + " · " + step.model : "raw exchange")));
    const facts = [
      ["request", step.method + " " + step.url],
      ["status", String(step.status || "no response")],
      ["api", step.api || "—"],
      ["stop", step.stop || "—"],
      ["tokens", step.tokens.input + " in / " + step.tokens.output + " out" + (step.tokens.cache_read || step.tokens.cache_write ? " · cache " + step.tokens.cache_read + " read / " + step.tokens.cache_write + " written" : "")],
      ["cost", fmtCost(step.cost)],
      ["latency", fmtMs(step.ms) + " (started at +" + fmtMs(step.start_ms) + ")"],
    ];
    if (step.stream) facts.push([d && d.stream ? "stream" : "body", step.stream.chunks + (step.stream.chunks === 1 ? " chunk" : " chunks") + " · first after " + fmtMs(step.stream.first_ms) + " · longest gap " + fmtMs(step.stream.max_gap_ms)]);
    if (step.error) facts.push(["transport error", (step.error.type || "") + ": " + (step.error.message || "")]);
    pane.appendChild(h("dl", { class: "facts", id: "step-facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
    if (step.stream && step.stream.times.length > 1) pane.appendChild(sparkline(step.stream.times));
    if (step.note) pane.appendChild(h("p", { class: "note" }, "Shown as raw bytes: " + step.note));
    const findings = lintFor(run.id).get(step.seq) || [];
    if (findings.length) pane.appendChild(h("div", {}, h("h3", {}, "Lint"), findings.map(findingEl)));
    const b = blameFor(run.id).get(step.seq);
    if (b) pane.appendChild(h("p", {}, "Blame: ", h("span", { class: "badge " + slug(b.verdict) }, b.verdict), " — " + blameLine(b)));
    if (d) {
      if (d.system) pane.appendChild(message({ role: "system", text: d.system }, ""));
      const messages = fullMessages(run, state.step);
      const older = d.shared;
      const conv = h("div", { id: "conversation" });
      const firstShown = older > 4 ? older - 2 : 0;
      if (firstShown > 0) {
        const more = h("button", { class: "raw-toggle" }, "show " + firstShown + " earlier messages");
        more.addEventListener("click", () => { more.replaceWith(...messages.slice(0, firstShown).map((m) => message(m, "older"))); });
        conv.appendChild(more);
      }
      messages.slice(firstShown).forEach((m, k) => conv.appendChild(message(m, k + firstShown < d.shared ? "older" : "")));
      pane.appendChild(h("h3", {}, "Conversation sent (" + messages.length + " messages, " + (messages.length - d.shared) + " new)"));
      pane.appendChild(conv);
      pane.appendChild(h("h3", {}, "Answer"));
      pane.appendChild(message({ role: "assistant", text: d.text, tool_calls: d.tool_calls }, "answer", "answer"));
      if (d.error_type) pane.appendChild(h("p", { class: "err" }, "error: " + d.error_type));
      if (d.tools_offered.length) pane.appendChild(h("p", { class: "note" }, "tools offered: " + d.tools_offered.join(", ")));
      if (LIVE && CONFIG.agent) pane.appendChild(forkForm(run, step));
    }
    const toggle = h("button", { class: "raw-toggle", id: "raw-toggle" }, state.raw ? "hide raw bytes" : "raw request and response bytes");
    const raw = h("div", { id: "raw", class: "raw", hidden: !state.raw });
    toggle.addEventListener("click", () => {
      state.raw = !state.raw;
      raw.hidden = !state.raw;
      toggle.textContent = state.raw ? "hide raw bytes" : "raw request and response bytes";
      if (state.raw && !raw.firstChild) fillRaw(raw, run, state.step);
    });
    pane.appendChild(toggle);
    pane.appendChild(raw);
    if (state.raw) fillRaw(raw, run, state.step);
  }
  function sparkline(times) {
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    const top = Math.max(...gaps, 1);
    return h("div", { class: "spark", title: "gaps between stream chunks" },
      gaps.map((g) => h("i", { style: { height: Math.max(1, 22 * g / top) + "px" } })));
  }
  function message(m, extra, id) {
    return h("div", { class: "msg " + slug(m.role) + (extra ? " " + extra : ""), id: id || null },
      h("div", { class: "role" }, m.role),
      h("div", { class: "body" },
        m.text ? h("pre", {}, m.text) : null,
        (m.tool_calls || []).map((c) => h("div", { class: "call" },
          h("span", { class: "name" }, c.name + "("), h("pre", {}, c.raw_arguments !== undefined ? c.raw_arguments : pretty(c.arguments)), h("span", { class: "name" }, ")"))),
        (m.tool_results || []).map((r) => h("div", { class: "result" + (r.is_error ? " is-error" : "") },
          h("span", { class: "note" }, "tool result" + (r.is_error ? " (error)" : "")), h("pre", {}, r.content))),
        !m.text && !(m.tool_calls || []).length && !(m.tool_results || []).length ? h("span", { class: "note" }, "(empty)") : null));
  }
  const SHOWN_CHARS = 100000; // a 300 KB body pretty-printed is slow to lay out: the rest on a click
  function longText(id, text) {
    if (text.length <= SHOWN_CHARS) return h("pre", { id: id }, text);
    const pre = h("pre", { id: id }, text.slice(0, SHOWN_CHARS));
    const more = h("button", { class: "raw-toggle" }, "show the remaining " + Math.round((text.length - SHOWN_CHARS) / 1024) + " KiB");
    more.addEventListener("click", () => { pre.textContent = text; more.remove(); });
    return h("div", {}, pre, more);
  }
  async function fillRaw(el, run, index) {
    const step = run.steps[index];
    clear(el).appendChild(h("p", { class: "note" }, "decoding…"));
    const headers = (rows) => h("table", {}, rows.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))));
    try {
      const [req, resp] = await Promise.all([bodyBytes(run, index, "request_body"), bodyBytes(run, index, "response_body")]);
      if (state.step !== index || currentRun() !== run) return;
      clear(el);
      append(el,
        h("h3", {}, "Request"), h("div", { class: "mono" }, step.method + " " + step.url),
        headers(step.raw.request_headers.map((i) => run.headers[i])),
        longText("raw-request", bytesText(req)),
        h("h3", {}, "Response"), h("div", { class: "mono" }, step.raw.http_version + " " + step.status + " " + step.raw.reason),
        headers(step.raw.response_headers.map((i) => run.headers[i])),
        longText("raw-response", bytesText(resp)),
        h("p", { class: "note" }, req.length + " request bytes, " + resp.length + " response bytes"));
    } catch (e) {
      clear(el).appendChild(h("p", { class: "err" }, "cannot decode these bytes: " + e));
    }
  }

  // -- fork from the page (live, with an agent) ------------------------------------------
  function forkForm(run, step) {
    const d = step.decoded;
    const text = h("textarea", { id: "fork-text" });
    text.value = d.text;
    const calls = h("textarea", { id: "fork-calls" });
    calls.value = JSON.stringify(d.tool_calls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })), null, 2);
    const status = h("span", { class: "status", id: "fork-status" });
    const button = h("button", { id: "fork-button", type: "button" }, "fork from this step");
    button.addEventListener("click", async () => {
      let toolCalls;
      try { toolCalls = JSON.parse(calls.value || "[]"); } catch (e) { status.textContent = "tool calls are not JSON: " + e.message; return; }
      button.disabled = true;
      status.textContent = "forking… the agent runs with this answer at step " + step.seq;
      try {
        const tape = state.tape;
        const reply = await api("/api/fork", { tape: tape, run: run.id, step: step.seq, edit: { text: text.value, tool_calls: toolCalls } });
        $("notice").textContent = "forked: run " + reply.run_id + " from run " + run.id + " at step " + step.seq +
          " (" + reply.served + " served from the tape, " + reply.live + " live)";
        await refresh();
        select(tape, reply.run_id, 0, { tab: "step" });
      } catch (e) {
        status.textContent = "fork failed: " + e.message;
        button.disabled = false;
      }
    });
    return h("div", { class: "fork-form" },
      h("h3", {}, "Edit this answer and fork"),
      h("p", { class: "note" }, "The run is replayed from the tape up to this step, this step answers as below, and the agent goes on live" + (CONFIG.fork_upstream ? " against " + CONFIG.fork_upstream : "") + "."),
      h("div", {}, "text"), text, h("div", {}, "tool calls (JSON)"), calls, h("div", {}, button, status));
  }

  // -- blame -----------------------------------------------------------------------------
  function blameLine(s) {
    if (!s.trials) return "unmeasured" + (s.note ? ": " + s.note : " (no trial ran)");
    return s.flips + " of " + s.trials + " forks flipped the outcome (rate " + s.flip_rate.toFixed(2) +
      ", interval " + s.cs_low.toFixed(2) + "–" + s.cs_high.toFixed(2) + ") · " + s.live_calls + " live calls · " + fmtCost(s.cost_usd);
  }
  function renderBlame() {
    const el = clear($("blame-section"));
    const b = state.data.blame;
    el.appendChild(h("h2", {}, "Blame"));
    if (!b) { el.appendChild(h("p", { class: "empty" }, "No blame result attached (seamtape report --blame FILE, from seamtape blame --json).")); return; }
    const leader = b.steps.find((s) => s.trials);
    const causes = b.steps.filter((s) => s.verdict === "cause");
    append(el,
      h("p", { id: "blame-headline" }, causes.length
        ? (causes.length > 1 ? "Steps " + causes.slice(0, -1).map((s) => s.step).join(", ") + " and " + causes[causes.length - 1].step + " are causes" : "Step " + causes[0].step + " is the cause") + " of run " + b.run_id + "'s outcome."
        : leader ? "No step is a proven cause yet; the most blamed is step " + leader.step + "." : "No step was measured."),
      h("p", { class: "explain" },
        "The run " + (b.parent_success ? "succeeded" : "failed") + ". Blame re-ran it many times, each time changing one step's answer (" + b.perturb +
        ") and letting the agent finish. A fork flips when its outcome differs. Each bar is the range the flip rate lies in (a 95% confidence sequence); the black tick is the observed rate; the dashed line is the threshold " +
        b.threshold + ". A bar wholly right of the line is a cause, wholly left is not the cause; hatched rows were never measured, which says nothing either way."),
      h("p", { class: "explain", id: "blame-cost" },
        b.trials + " trials · " + b.live_calls + " live calls · " + fmtCost(b.cost_usd) + " spent" + (b.budget !== null ? " of a " + fmtCost(b.budget) + " budget" : "") + " · stopped: " + b.stopped),
      h("div", { class: "axis" }, h("span", {}), h("span", {}, h("b", {}, "0"), h("b", {}, "flip rate"), h("b", {}, "1")), h("span", {})));
    const selectedHere = state.tape === 0 && state.run === b.run_id ? (currentStep() || {}).seq : null;
    for (const s of b.steps) {
      const measured = s.trials > 0;
      const track = h("div", { class: "track" });
      if (measured) {
        track.appendChild(h("div", { class: "interval", style: { left: 100 * s.cs_low + "%", width: Math.max(0.5, 100 * (s.cs_high - s.cs_low)) + "%" } }));
        track.appendChild(h("div", { class: "rate", style: { left: 100 * s.flip_rate + "%" } }));
      }
      track.appendChild(h("div", { class: "threshold", style: { left: 100 * b.threshold + "%" } }));
      el.appendChild(h("div", {
        class: "blame-row " + slug(s.verdict) + (selectedHere === s.step ? " selected" : ""),
        data: { step: s.step },
        onclick: () => selectSeq(0, b.run_id, s.step, "step"),
      },
        h("span", { class: "label" }, "step " + s.step), track,
        h("span", {}, h("span", { class: "badge " + slug(s.verdict) }, s.verdict)),
        h("span", { class: "sub" }, blameLine(s))));
    }
  }

  // -- lint ------------------------------------------------------------------------------
  function findingEl(f) {
    const runId = f.run || state.data.selected.run;
    return h("div", { class: "finding " + f.severity },
      h("span", { class: "rule" }, f.rule), " ", h("span", { class: "badge lint-" + f.severity }, f.severity), " ",
      h("span", {}, f.message), " ",
      h("span", { class: "where" }, "steps ", f.steps.map((s, i) => [i ? ", " : "", h("a", { onclick: () => selectSeq(0, runId, s, "step") }, String(s))])));
  }
  function renderLint() {
    const el = clear($("lint-section"));
    el.appendChild(h("h2", {}, "Lint findings"));
    if (!state.data.lint.length) { el.appendChild(h("p", { class: "empty" }, "No lint findings attached (seamtape report --lint FILE).")); return; }
    el.appendChild(h("div", { id: "lint-list" }, state.data.lint.map(findingEl)));
  }

  // -- diff ------------------------------------------------------------------------------
  function renderDiff() {
    const pane = clear($("diff-pane"));
    const diffs = state.data.diffs;
    $("tab-diff").textContent = "Diff" + (diffs.length ? " (" + diffs.length + ")" : "");
    if (!diffs.length) { pane.appendChild(h("p", { class: "empty" }, "No diff: this run has no forks (or give --diff RUN).")); return; }
    if (state.diff >= diffs.length) state.diff = 0;
    const chooser = h("select", { id: "diff-select" }, diffs.map((d, i) => {
      const o = h("option", { value: i }, "A " + d.a.run + (d.a.name ? " (" + d.a.name + ")" : "") + "  ↔  B " + d.b.run + (d.b.name ? " (" + d.b.name + ")" : ""));
      if (i === state.diff) o.selected = true;
      return o;
    }));
    chooser.addEventListener("change", () => { state.diff = Number(chooser.value); renderDiff(); });
    const d = diffs[state.diff];
    const first = d.first === null ? null : d.pairs[d.first];
    append(pane, h("div", { class: "diff-head" }, chooser),
      h("p", { id: "diff-summary" }, first === null ? "No divergence: every step has the same behaviour."
        : "First divergence: " + (first.a === null ? "step " + first.b + " of B was inserted" : first.b === null ? "step " + first.a + " of A was dropped" : "step " + first.a + " of A ↔ step " + first.b + " of B " + first.kind) +
          ". Tool-call edit distance " + d.tool_distance + "."));
    const table = h("table", { class: "diff-table", id: "diff-table" },
      h("tr", {}, h("th", {}, "A"), h("th", {}, "B"), h("th", {}, "kind"), h("th", {}, "answer"), h("th", {}, "")));
    d.pairs.forEach((p, i) => {
      const link = (side, seq) => (seq === null ? "—" : h("a", { class: "link", onclick: () => selectSeq(side.tape, side.run, seq, "step") }, String(seq)));
      const changes = p.changes.length ? h("details", { open: i === d.first },
        h("summary", {}, p.changes.length + p.more_changes + " changed"),
        h("div", { class: "changes" }, p.changes.map((c) => h("div", {}, c.path + ": ", h("b", {}, c.a), " → ", h("b", {}, c.b))))) : null;
      table.appendChild(h("tr", { class: p.kind + (i === d.first ? " first" : ""), data: { pair: i } },
        h("td", {}, link(d.a, p.a)), h("td", {}, link(d.b, p.b)), h("td", { class: "kind" }, p.kind),
        h("td", {}, p.answer, changes), h("td", { class: "marker" }, i === d.first ? "◀ first divergence" : "")));
    });
    pane.appendChild(table);
  }
  function showTab(tab) {
    state.tab = tab;
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === tab);
    $("step-pane").hidden = tab !== "step";
    $("diff-pane").hidden = tab !== "diff";
  }
  function preferDiffFor(runId) {
    const i = state.data.diffs.findIndex((d) => d.b.run === runId || d.a.run === runId);
    if (i >= 0) state.diff = i;
  }

  // -- everything ------------------------------------------------------------------------
  function renderAll() {
    renderTree();
    renderTimeline();
    // A live update must not wipe what a person is typing into the fork form.
    const typing = document.activeElement && $("step-pane").contains(document.activeElement);
    if (!typing) renderDetail();
    renderBlame();
    renderLint();
    preferDiffFor(state.run);
    renderDiff();
  }
  function load(data) {
    const keep = state.data ? { tape: state.tape, run: state.run, step: state.step } : null;
    state.data = data;
    if (keep && findRun(keep.tape, keep.run)) Object.assign(state, keep);
    else if (!readFragment()) {
      state.tape = 0;
      state.run = data.selected.run || (data.tapes[0].runs.length ? data.tapes[0].runs[data.tapes[0].runs.length - 1].id : null);
      state.step = 0;
    }
    if (!state.run) { renderAll(); return; }
    renderAll();
    writeFragment();
  }

  document.addEventListener("keydown", (e) => {
    if (e.target && /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) {
      if (e.key === "Escape") { e.target.blur(); }
      return;
    }
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); move(1); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); move(-1); }
    else if (e.key === "/") { e.preventDefault(); $("search").focus(); }
  });
  $("search").addEventListener("input", () => { state.search = $("search").value.trim().toLowerCase(); applySearch(); });
  $("search").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); move(1); }
    if (e.key === "Escape") { $("search").value = ""; state.search = ""; applySearch(); }
  });
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
  window.addEventListener("hashchange", () => { if (readFragment()) { renderAll(); } });

  // -- live ------------------------------------------------------------------------------
  async function api(path, body) {
    const reply = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { "X-Seamtape-Token": CONFIG.token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    const doc = await reply.json();
    if (!reply.ok) throw new Error(doc.error || reply.statusText);
    return doc;
  }
  async function refresh() { load(await api("/api/data")); }

  if (LIVE) {
    const status = $("live-status");
    status.textContent = "live";
    const events = new EventSource("/api/events?token=" + encodeURIComponent(CONFIG.token));
    events.addEventListener("update", () => { refresh().catch((e) => { status.textContent = "update failed: " + e.message; }); });
    events.addEventListener("open", () => { status.classList.add("on"); status.textContent = "live"; });
    events.addEventListener("error", () => { status.classList.remove("on"); status.textContent = "disconnected"; });
    refresh().then(() => { document.body.dataset.ready = "1"; });
  } else {
    const started = performance.now();
    load(JSON.parse(document.getElementById("seamtape-data").textContent));
    document.body.dataset.renderMs = String(Math.round(performance.now() - started));
    document.body.dataset.ready = "1";
  }
})();
