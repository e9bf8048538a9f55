// The page of diffuse serve: no framework, no build step, no network but
// this server. It talks to /api/models, /api/generate (server-sent events
// over a POST), /api/gallery and /images/ID.png.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let lastSeed = null;
let running = null; // the AbortController of the request in flight
let inputImage = null; // the uploaded image (an HTMLImageElement)

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = sessionStorage.getItem("diffuse-key");
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function api(path, opts) {
  const r = await fetch(path, Object.assign({}, opts, { headers: headers(opts && opts.headers) }));
  if (r.status === 401) {
    $("keybox").hidden = false;
    throw new Error("this server needs an API key");
  }
  return r;
}

function task() {
  return document.querySelector("input[name=task]:checked").value;
}

function currentModel() {
  return models.find((m) => m.name === $("model").value);
}

async function loadModels() {
  const r = await api("/api/models");
  const body = await r.json();
  models = body.models || [];
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of models) sel.add(new Option(`${m.name} (${m.kind})`, m.name, false, m.name === body.current));
  if (models.length === 0) {
    $("nomodel").hidden = false;
    $("nomodel").textContent = body.no_models;
    $("generate").disabled = true;
    return;
  }
  $("n").max = body.max_images;
  $("steps").max = body.max_steps;
  $("model-note").textContent = "flagged images: " + body.safety;
  applyModel();
}

function sizes(m) {
  const out = [];
  for (let s = m.size_step; s <= m.max_side && out.length < 64; s += m.size_step) out.push(s);
  return out;
}

function fillSelect(sel, values, chosen) {
  sel.innerHTML = "";
  for (const v of values) sel.add(new Option(String(v), String(v), false, String(v) === String(chosen)));
}

function applyModel() {
  const m = currentModel();
  if (!m) return;
  fillSelect($("sampler"), m.samplers, m.sampler);
  $("steps").value = m.steps;
  $("guidance").value = m.guidance;
  fillSelect($("width"), sizes(m), m.width);
  fillSelect($("height"), sizes(m), m.height);
  $("height").disabled = m.kind === "checkpoint"; // square images
  $("prompt-hint").textContent = m.classes ? "(name a class: " + m.classes.join(", ") + "; empty: all in turn)" : "";
  for (const el of document.querySelectorAll("input[name=task]")) {
    el.disabled = !m.tasks.includes(el.value);
    if (el.disabled && el.checked) document.querySelector(`input[name=task][value=${m.tasks[0]}]`).checked = true;
  }
  applyTask();
}

function applyTask() {
  const t = task();
  $("imagebox").hidden = t === "txt2img";
  $("maskbox").hidden = t !== "inpaint";
  if (t === "inpaint" && $("strength").value === "0.75") $("strength").value = "1";
  $("strength-out").textContent = $("strength").value;
}

// --- the input image and the mask painter ---------------------------------

function drawPicture() {
  const pic = $("picture"), mask = $("mask");
  if (!inputImage) return;
  for (const c of [pic, mask]) {
    c.width = inputImage.naturalWidth;
    c.height = inputImage.naturalHeight;
  }
  pic.getContext("2d").drawImage(inputImage, 0, 0);
  clearMask();
}

function clearMask() {
  const c = $("mask"), g = c.getContext("2d");
  g.fillStyle = "black";
  g.fillRect(0, 0, c.width, c.height);
}

function paintAt(ev) {
  const c = $("mask"), r = c.getBoundingClientRect();
  const x = ((ev.clientX - r.left) / r.width) * c.width, y = ((ev.clientY - r.top) / r.height) * c.height;
  const g = c.getContext("2d");
  g.fillStyle = "white";
  g.beginPath();
  g.arc(x, y, ((+$("brush").value / r.width) * c.width) / 2, 0, 2 * Math.PI);
  g.fill();
}

function setupPainter() {
  const c = $("mask");
  let down = false;
  c.addEventListener("pointerdown", (e) => { down = true; c.setPointerCapture(e.pointerId); paintAt(e); });
  c.addEventListener("pointermove", (e) => { if (down) paintAt(e); });
  c.addEventListener("pointerup", () => { down = false; });
  c.addEventListener("pointercancel", () => { down = false; });
  // Keyboard: the arrow keys move a brush over the canvas, space paints.
  let kx = 0.5, ky = 0.5;
  c.addEventListener("keydown", (e) => {
    const d = 0.03, moves = { ArrowLeft: [-d, 0], ArrowRight: [d, 0], ArrowUp: [0, -d], ArrowDown: [0, d] };
    if (moves[e.key]) { kx = Math.min(1, Math.max(0, kx + moves[e.key][0])); ky = Math.min(1, Math.max(0, ky + moves[e.key][1])); }
    else if (e.key !== " ") return;
    e.preventDefault();
    const r = c.getBoundingClientRect();
    if (e.key === " " || e.shiftKey) paintAt({ clientX: r.left + kx * r.width, clientY: r.top + ky * r.height });
  });
  $("clearmask").onclick = clearMask;
  $("fillmask").onclick = () => { const g = c.getContext("2d"); g.fillStyle = "white"; g.fillRect(0, 0, c.width, c.height); };
  $("upload").onchange = () => {
    const f = $("upload").files[0];
    if (!f) return;
    const img = new Image();
    img.onload = () => { inputImage = img; drawPicture(); };
    img.src = URL.createObjectURL(f);
  };
}

// --- generating ------------------------------------------------------------

function request() {
  const num = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  const m = currentModel();
  const req = {
    task: task(), model: m.name, prompt: $("prompt").value, negative: $("negative").value, sampler: $("sampler").value,
    steps: num("steps"), guidance: num("guidance"), seed: num("seed"), width: num("width"),
    height: m.kind === "checkpoint" ? num("width") : num("height"), n: num("n"),
  };
  if (req.task !== "txt2img") {
    if (!inputImage) throw new Error("choose an input image first");
    req.image = $("picture").toDataURL("image/png");
    req.strength = Number($("strength").value);
  }
  if (req.task === "inpaint") req.mask = $("mask").toDataURL("image/png");
  return req;
}

function showStatus(st) {
  const p = $("progress");
  p.value = st.progress || 0;
  let text;
  if (st.state === "queued") text = `waiting: position ${st.position} in the queue`;
  else if (st.state === "running") text = `step ${st.step}/${st.total}` + (st.eta > 0 ? ` · about ${Math.ceil(st.eta)} s left` : "");
  else text = st.state;
  $("progress-text").textContent = text;
}

async function generate(ev) {
  if (ev) ev.preventDefault();
  if (running) return;
  $("error").textContent = "";
  let req;
  try { req = request(); } catch (e) { $("error").textContent = e.message; return; }
  running = new AbortController();
  $("generate").disabled = true;
  $("cancel").disabled = false;
  $("results").innerHTML = "";
  try {
    const r = await api("/api/generate", {
      method: "POST", body: JSON.stringify(req), signal: running.signal, headers: { "Content-Type": "application/json" },
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({ error: r.statusText }));
      throw new Error(body.error);
    }
    await readEvents(r.body, (event, data) => {
      if (event === "status") {
        showStatus(data.status);
        if (data.preview) { $("preview").src = data.preview; $("preview").hidden = false; }
      } else if (event === "done") {
        $("progress").value = 1;
        $("progress-text").textContent = `done: ${data.images.length} image(s)`;
        for (const im of data.images) $("results").append(figure(im));
        if (data.images.length) { lastSeed = data.images[0].seed; $("lastseed").disabled = false; }
        $("preview").hidden = true;
        loadGallery();
      } else if (event === "error") {
        throw new Error(data.error);
      }
    });
  } catch (e) {
    $("error").textContent = e.name === "AbortError" ? "cancelled" : e.message;
  } finally {
    running = null;
    $("generate").disabled = false;
    $("cancel").disabled = true;
  }
}

// readEvents parses a text/event-stream body.
async function readEvents(body, on) {
  const reader = body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const chunk = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message", data = "";
      for (const line of chunk.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      on(event, JSON.parse(data));
    }
  }
}

// --- the gallery -------------------------------------------------------------

function figure(im) {
  const f = document.createElement("figure");
  const img = document.createElement("img");
  img.src = im.url;
  img.alt = (im.request && im.request.prompt) || "generated image";
  img.loading = "lazy";
  const cap = document.createElement("figcaption");
  const pre = document.createElement("pre");
  pre.textContent = im.parameters;
  const reuse = document.createElement("button");
  reuse.type = "button";
  reuse.textContent = "Reuse settings";
  reuse.onclick = () => reuseSettings(im.request);
  const dl = document.createElement("a");
  dl.href = im.url + "?download";
  dl.textContent = "Download PNG";
  dl.setAttribute("download", "");
  cap.append(pre, reuse, dl);
  if (im.safety && im.safety !== "ok" && im.safety !== "unchecked") cap.prepend(`safety: ${im.safety}`);
  f.append(img, cap);
  return f;
}

function reuseSettings(r) {
  if (!r) return;
  if (models.some((m) => m.name === r.model)) { $("model").value = r.model; applyModel(); }
  $("prompt").value = r.prompt;
  $("negative").value = r.negative;
  $("sampler").value = r.sampler;
  $("steps").value = r.steps;
  $("guidance").value = r.guidance;
  $("seed").value = r.seed;
  $("width").value = r.width;
  $("height").value = r.height;
  $("n").value = 1;
  $("prompt").focus();
}

async function loadGallery() {
  const r = await api("/api/gallery");
  const list = await r.json();
  const g = $("gallery");
  g.innerHTML = "";
  for (const im of list.slice(0, 60)) g.append(figure(im));
}

// --- wiring ------------------------------------------------------------------

window.addEventListener("DOMContentLoaded", () => {
  $("form").onsubmit = generate;
  $("cancel").onclick = () => running && running.abort();
  $("model").onchange = applyModel;
  for (const el of document.querySelectorAll("input[name=task]")) el.onchange = applyTask;
  $("strength").oninput = () => { $("strength-out").textContent = $("strength").value; };
  $("randomseed").onclick = () => { $("seed").value = -1; };
  $("lastseed").onclick = () => { if (lastSeed !== null) $("seed").value = lastSeed; };
  $("savekey").onclick = () => { sessionStorage.setItem("diffuse-key", $("apikey").value); $("keybox").hidden = true; start(); };
  document.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) generate(e); });
  setupPainter();
  start();
});

function start() {
  loadModels().then(loadGallery).catch((e) => { $("error").textContent = e.message; });
}
