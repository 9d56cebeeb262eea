// The loan desk: one page over the /v1 API. The key lives in sessionStorage and travels in the
// X-API-Key header, so images and the listing stream are fetched with it too (an <img src> or an
// EventSource cannot send headers, and keys do not belong in URLs).
"use strict";

const KEY_STORE = "nftwatch.apiKey";
const $ = (id) => document.getElementById(id);
const imageCache = new Map();
const listingRows = new Map(); // "chain/contract/token" -> listing body
let streamAbort = null;
let current = null; // {chain, contract, tokenId}

function key() { return sessionStorage.getItem(KEY_STORE) || ""; }

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "X-API-Key": key(), Accept: "application/json", ...(options.headers || {}) },
  });
  if (response.status === 401) { askForKey("That API key was refused."); }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail
        : (body.detail || []).map((d) => d.msg).join("; ") || detail;
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return { status: response.status, body: await response.json() };
}

async function imageSrc(path) {
  if (!imageCache.has(path)) {
    imageCache.set(path, (async () => {
      const r = await fetch(path, { headers: { "X-API-Key": key() } });
      if (!r.ok) throw new ApiError(r.status, "no image");
      return URL.createObjectURL(await r.blob());
    })());
  }
  return imageCache.get(path);
}

function setImage(img, path) {
  img.removeAttribute("src");
  if (!path) { img.classList.add("noimg"); return; }
  imageSrc(path).then((src) => { img.src = src; }).catch(() => img.classList.add("noimg"));
}

// ------------------------------------------------------------------ formatting

const fmtEth = (x) => (x === null || x === undefined || Number.isNaN(x)) ? "—"
  : `${x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(2)} ETH`;
const fmtPct = (x) => (x === null || x === undefined) ? "—" : `${Math.round(x * 100)} %`;
const fmtDate = (iso) => iso ? new Date(iso).toISOString().slice(0, 10) : "—";
const short = (addr) => addr ? `${addr.slice(0, 6)}…${addr.slice(-4)}` : "—";
const tokenPath = (chain, contract, id) => `${chain}/${contract}/${id}`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c));
  return node;
}

// ------------------------------------------------------------------ key

function askForKey(message) {
  sessionStorage.removeItem(KEY_STORE);
  $("key-form").hidden = false;
  $("key-set").hidden = true;
  if (message) $("lookup-error").textContent = message;
  if (streamAbort) streamAbort.abort();
}

function keyReady() {
  $("key-form").hidden = true;
  $("key-set").hidden = false;
  startListings();
}

// ------------------------------------------------------------------ token view

async function loadToken(chain, contract, tokenId) {
  $("lookup-error").textContent = "";
  current = { chain, contract: contract.toLowerCase(), tokenId: String(tokenId) };
  const path = tokenPath(chain, current.contract, current.tokenId);
  $("chain").value = chain; $("contract").value = current.contract; $("token-id").value = tokenId;
  const button = $("lookup-go");
  button.disabled = true;
  try {
    const [token, valuation] = await Promise.all([
      api(`/v1/tokens/${path}`).then((r) => r.body).catch((e) => {
        if (e.status === 404) return null; throw e;
      }),
      api(`/v1/valuations/${path}`).then((r) => r.body).catch((e) => {
        if (e.status === 404) return null; throw e;
      }),
    ]);
    $("placeholder").hidden = true;
    $("token-view").hidden = false;
    renderToken(token, path);
    loadMarket(current);
    if (valuation) renderValuation(valuation, token);
    else await requestValuation(token);
  } catch (e) {
    $("lookup-error").textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

async function requestValuation(token) {
  if (!current) return;
  const path = tokenPath(current.chain, current.contract, current.tokenId);
  renderValuation(null, token);
  $("val-price").textContent = "valuing…";
  const r = await api(`/v1/valuations/${path}?wait=15`, { method: "POST" });
  if (r.status === 200) renderValuation(r.body, token);
  else $("val-price").textContent = "queued";
}

function renderToken(token, path) {
  const name = token?.metadata?.name || `#${current.tokenId}`;
  $("token-title").textContent = name;
  $("token-sub").textContent = `${short(current.contract)} · token ${current.tokenId}` +
    (token?.owner ? ` · owner ${short(token.owner)}` : "");
  setImage($("token-image"), token?.image?.url || null);
  const facts = $("facts");
  facts.replaceChildren();
  const chip = (label, value) => facts.append(el("span", { class: "chip" }, el("b", {}, label), value));
  if (token) {
    chip("sales", String(token.sale_count));
    chip("transfers", String(token.transfer_count));
    if (token.last_sale) chip("last sale", `${fmtEth(token.last_sale.price_eth)} on ${fmtDate(token.last_sale.at)}`);
    const flagged = (token.sales || []).filter((s) => s.wash_flags && s.wash_flags.length);
    if (flagged.length) {
      const reasons = [...new Set(flagged.flatMap((s) => s.wash_flags))].join(", ");
      chip("wash-flagged", `${flagged.length} of ${token.sales.length} sales (${reasons})`);
    }
    for (const a of (Array.isArray(token.attributes) ? token.attributes : []).slice(0, 8)) {
      if (a && a.trait_type) chip(a.trait_type, String(a.value));
    }
  } else {
    chip("status", "not yet seen: resolving");
  }
  renderChart(token ? token.sales : [], null);
}

// What the market shows now (the token's ask, its bids, the collection's floor) and the
// collection's daily index: fetched beside the token, neither holds the page up.
async function loadMarket(at) {
  const path = tokenPath(at.chain, at.contract, at.tokenId);
  const [book, index] = await Promise.all([
    api(`/v1/tokens/${path}/orders`).then((r) => r.body).catch(() => null),
    api(`/v1/collections/${at.chain}/${at.contract}/index?days=365`).then((r) => r.body).catch(() => null),
  ]);
  if (current !== at) return; // another token was picked meanwhile
  renderOrders(book);
  renderIndex(index);
}

function renderOrders(book) {
  const ask = book?.ask;
  $("val-ask").textContent = ask ? fmtEth(ask.price_eth) : "not listed";
  $("val-ask-venue").textContent = ask ? venueName(ask.venue) : "";
  const bids = book?.bids || [];
  $("val-bids").textContent = bids.length
    ? bids.map((b) => `bid ${fmtEth(b.price_eth)} (${b.bidder ? short(b.bidder) : b.venue})`).join(" · ")
    : "no bids";
  const floor = book?.floor_ask;
  $("val-floor").textContent = floor
    ? `collection floor ${fmtEth(floor.price_eth)} (#${floor.token_id}, ${venueName(floor.venue)})`
    : "nothing listed in the collection";
}

function renderIndex(index) {
  const box = $("index-chart");
  box.replaceChildren();
  const points = (index?.points || []).map((p) => ({ t: Date.parse(p.day), v: p.level_eth, p }));
  $("index-sub").textContent = index
    ? `${index.trait_adjusted ? "trait-adjusted" : "raw"} median of the last ${index.n_sales} sales · ${index.days} days`
    : "";
  if (!points.length) {
    box.append(el("p", { class: "empty" }, "No sales in the collection over these days."));
    return;
  }
  const W = 1000, H = 220, L = 56, R = 16, T = 14, B = 30;
  let t0 = points[0].t, t1 = points[points.length - 1].t;
  if (t1 - t0 < 86400000) { t0 -= 43200000; t1 += 43200000; }
  const vals = points.map((q) => q.v);
  let v0 = Math.min(...vals) * 0.9, v1 = Math.max(...vals) * 1.1;
  if (v1 - v0 < 1e-9) { v0 = 0; v1 = v1 * 2 || 1; }
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - ((v - v0) / (v1 - v0)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "collection index" });
  for (let i = 0; i <= 3; i++) {
    const v = v0 + ((v1 - v0) * i) / 3;
    chart.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    chart.append(svg("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end" }, v.toPrecision(2)));
  }
  for (const [i, t] of [[0, t0], [1, t1]]) {
    chart.append(svg("text", { x: x(t), y: H - 10, "text-anchor": i ? "end" : "start" },
      new Date(t).toISOString().slice(0, 10)));
  }
  chart.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  chart.append(svg("path", { class: "index-line", d: points.map((q, i) => `${i ? "L" : "M"}${x(q.t)},${y(q.v)}`).join("") }));
  for (const q of points) {
    const c = svg("circle", { class: "index-pt", cx: x(q.t), cy: y(q.v), r: 2.5, "data-level": q.v, "data-sales": q.p.sales });
    c.append(svg("title", {}, `${q.p.day}: ${fmtEth(q.v)} (${q.p.sales} sales)`));
    chart.append(c);
  }
  box.append(chart);
}

// The collateral value and its guards: a flagged valuation is shown, with why not to lend on it.
function renderCollateral(c) {
  $("val-collateral").textContent = c && c.value_eth != null ? fmtEth(c.value_eth) : "—";
  const guards = $("val-guards");
  if (!c) {
    guards.textContent = "";
    guards.classList.remove("warn");
    return;
  }
  const age = c.newest_evidence_age_days;
  const facts = `haircut ${fmtPct(c.haircut)} · newest sale ${age == null ? "—" : `${Math.round(age)} d`} ago`;
  guards.textContent = c.lendable ? facts : `not lendable: ${c.flags.join(", ")} · ${facts}`;
  guards.classList.toggle("warn", !c.lendable);
}

function renderValuation(v, token) {
  const interval = v ? v.interval_eth : [null, null];
  $("val-price").textContent = v ? fmtEth(v.price_eth) : "—";
  $("val-interval").textContent = v && interval[0] !== null
    ? `80 % interval ${fmtEth(interval[0])} – ${fmtEth(interval[1])}` : "no interval";
  $("val-pliquid").textContent = v ? fmtPct(v.p_liquid) : "—";
  $("val-confidence").textContent = v ? fmtPct(v.confidence) : "—";
  $("pliquid-meter").style.width = v ? `${v.p_liquid * 100}%` : "0";
  $("confidence-meter").style.width = v ? `${v.confidence * 100}%` : "0";
  $("val-meta").textContent = v ? `${v.model_version} · ${fmtDate(v.valued_at)}` : "";
  renderCollateral(v ? v.collateral : null);
  const bar = $("interval-bar");
  if (v && interval[0] !== null && v.price_eth) {
    const hi = interval[1] * 1.15;
    bar.querySelector(".band").style.left = `${(interval[0] / hi) * 100}%`;
    bar.querySelector(".band").style.width = `${((interval[1] - interval[0]) / hi) * 100}%`;
    bar.querySelector(".mark").style.left = `${(v.price_eth / hi) * 100}%`;
    bar.hidden = false;
  } else {
    bar.hidden = true;
  }
  renderWhy(v);
  renderComparables(v);
  if (token) renderChart(token.sales, v);
}

function renderWhy(v) {
  const why = $("why");
  why.replaceChildren();
  if (!v) { why.append(el("p", { class: "empty" }, "No valuation yet.")); return; }
  const ex = v.explanation || {};
  const dl = el("dl");
  const row = (k, val) => { dl.append(el("dt", {}, k), el("dd", {}, val)); };
  row("Method", ex.method || ex.model?.version || v.model_version);
  const market = ex.market || {};
  for (const [k, val] of Object.entries(market)) {
    if (typeof val === "number") row(k.replaceAll("_", " "), Number.isInteger(val) ? String(val) : val.toFixed(3));
  }
  // the served stack: each input's price and weight (the estimate is their weighted geometric mean)
  for (const x of Array.isArray(ex.stack) ? ex.stack : []) {
    if (!x || typeof x.value_eth !== "number" || typeof x.weight !== "number") continue;
    row(`${String(x.input).replaceAll("_", " ")} × ${x.weight.toFixed(2)}`,
      x.missing ? "no data (level stands in)" : `${x.value_eth.toFixed(3)} ETH`);
  }
  if (ex.rarity) row("Rarity rank", `${ex.rarity.rank} of ${ex.rarity.of}`);
  if (Array.isArray(ex.own_trades)) row("Own trades", String(ex.own_trades.length));
  for (const [label, note] of [["Market asks", ex.market_asks], ["Own orders", ex.orders]]) {
    if (note && Array.isArray(note.moved) && note.moved.length) row(label, note.moved.join("; "));
  }
  why.append(dl);
  const drivers = (ex.drivers || []).filter((d) => d && typeof d === "object" && "log_effect" in d);
  if (drivers.length) {
    const max = Math.max(...drivers.map((d) => Math.abs(d.log_effect)), 1e-9);
    const box = el("div", { class: "drivers" });
    for (const d of drivers) {
      const w = (Math.abs(d.log_effect) / max) * 50;
      const bar = el("span", { class: d.log_effect >= 0 ? "up" : "down" });
      bar.style.width = `${w}%`;
      const pct = (Math.exp(d.log_effect) - 1) * 100;
      box.append(el("div", { class: "driver" }, el("span", {}, d.feature),
        el("div", { class: "barwrap" }, bar), el("span", {}, `${pct >= 0 ? "+" : ""}${pct.toFixed(0)} %`)));
    }
    why.append(box);
  } else if (Array.isArray(ex.drivers) && ex.drivers.length) {
    why.append(el("p", { class: "muted" }, ex.drivers.map(String).join(" · ")));
  }
}

async function renderComparables(v) {
  const grid = $("comparables");
  grid.replaceChildren();
  if (!current) return;
  let comps = v?.explanation?.visual_neighbours || v?.explanation?.comparables || [];
  if (!comps.length) {
    try {
      const path = tokenPath(current.chain, current.contract, current.tokenId);
      const r = await api(`/v1/tokens/${path}/similar?k=8&same_collection=true`);
      comps = r.body.neighbours;
    } catch (_) { comps = []; }
  }
  if (!comps.length) {
    grid.append(el("p", { class: "empty" }, "No embedded neighbours yet."));
    return;
  }
  for (const c of comps) {
    const path = tokenPath(current.chain, current.contract, c.token_id);
    const img = el("img", { alt: `token ${c.token_id}`, loading: "eager" });
    setImage(img, `/v1/tokens/${path}/image`);
    const card = el("div", { class: "comp", "data-token": String(c.token_id) }, img,
      el("div", { class: "cap" },
        el("span", { class: "id" }, `#${c.token_id}`),
        el("span", { class: "sale" }, c.last_sale_eth != null ? `last ${fmtEth(c.last_sale_eth)}` : "never sold"),
        el("span", { class: "sim" }, `similarity ${(c.similarity ?? 0).toFixed(3)}`)));
    card.addEventListener("click", () => loadToken(current.chain, current.contract, c.token_id));
    grid.append(card);
  }
}

// ------------------------------------------------------------------ chart (inline SVG)

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderChart(sales, v) {
  const box = $("chart");
  box.replaceChildren();
  const points = (sales || []).filter((s) => s.price_eth !== null && s.block_time)
    .map((s) => ({ t: Date.parse(s.block_time), p: s.price_eth, s }))
    .sort((a, b) => a.t - b.t);
  if (!points.length) {
    box.append(el("p", { class: "empty" }, "This token has no recorded sales."));
    return;
  }
  const W = 640, H = 260, L = 56, R = 16, T = 14, B = 30;
  const now = v?.valued_at ? Date.parse(v.valued_at) : points[points.length - 1].t;
  let t0 = points[0].t, t1 = Math.max(now, points[points.length - 1].t);
  if (t1 - t0 < 86400000) { t0 -= 43200000; t1 += 43200000; }
  const prices = points.map((x) => x.p);
  if (v && v.price_eth) prices.push(v.price_eth, ...(v.interval_eth || []).filter((x) => x != null));
  const raw = Math.max(...prices) * 1.05 || 1;
  const mag = 10 ** Math.floor(Math.log10(raw / 4));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s * 4 >= raw);
  const p0 = 0, p1 = step * 4;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (p) => H - B - ((p - p0) / (p1 - p0)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "trade history" });
  for (let i = 0; i <= 4; i++) {
    const p = p0 + ((p1 - p0) * i) / 4;
    chart.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(p), y2: y(p) }));
    chart.append(svg("text", { x: L - 8, y: y(p) + 4, "text-anchor": "end" }, p.toFixed(step < 1 ? (step < 0.1 ? 2 : 1) : 0)));
  }
  for (let i = 0; i <= 3; i++) {
    const t = t0 + ((t1 - t0) * i) / 3;
    chart.append(svg("text", { x: x(t), y: H - 10, "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle" },
      new Date(t).toISOString().slice(0, 10)));
  }
  chart.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  if (v && v.price_eth && v.interval_eth && v.interval_eth[0] != null) {
    const [lo, hi] = v.interval_eth;
    chart.append(svg("rect", { class: "band", x: L, width: W - L - R, y: y(hi), height: y(lo) - y(hi) }));
    chart.append(svg("line", { class: "est", x1: L, x2: W - R, y1: y(v.price_eth), y2: y(v.price_eth) }));
    chart.append(svg("text", { x: W - R - 4, y: y(v.price_eth) - 6, "text-anchor": "end" }, `estimate ${fmtEth(v.price_eth)}`));
  }
  chart.append(svg("path", { class: "line", d: points.map((q, i) => `${i ? "L" : "M"}${x(q.t)},${y(q.p)}`).join("") }));
  for (const q of points) {
    const wash = (q.s.wash_flags || []).join(", ");
    const c = svg("circle", { class: wash ? "pt wash" : "pt", cx: x(q.t), cy: y(q.p), r: 5, "data-price": q.p });
    c.append(svg("title", {}, `${fmtEth(q.p)} on ${fmtDate(q.s.block_time)} (${q.s.marketplace})` +
      (wash ? ` · wash-flagged: ${wash}` : "")));
    chart.append(c);
  }
  box.append(chart);
}

// ------------------------------------------------------------------ listings feed

// An on-chain offer stands for its token (a newer one replaces it); an off-chain listing is
// its own row, keyed by its venue and order hash, until it leaves the book.
function listingKey(x) {
  return x.order_hash ? `${x.venue}:${x.order_hash}` : tokenPath(x.chain_id, x.contract, x.token_id);
}

const stillListed = (x) => !x.expires_at || Date.parse(x.expires_at) > Date.now();
const venueName = (v) => (v === "onchain" ? "on chain" : v === "opensea" ? "OpenSea" : v);

function renderListings() {
  const list = $("listings");
  const rows = [...listingRows.values()].filter(stillListed)
    .sort((a, b) => (Date.parse(b.listed_at) - Date.parse(a.listed_at)) ||
      ((b.block_number ?? 0) - (a.block_number ?? 0)) || ((b.log_index ?? 0) - (a.log_index ?? 0)))
    .slice(0, 50);
  $("listings-empty").hidden = rows.length > 0;
  $("listing-count").textContent = rows.length ? String(rows.length) : "";
  const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
  list.replaceChildren(...rows.map((x) => existing.get(listingKey(x)) && existing.get(listingKey(x)).dataset.v === String(x.valuation?.id ?? "")
    ? existing.get(listingKey(x)) : listingItem(x, existing.has(listingKey(x)) || list.dataset.loaded === "1")));
  list.dataset.loaded = "1";
}

function listingItem(x, fresh) {
  const img = el("img", { class: "thumb", alt: "" });
  setImage(img, x.image_url);
  const v = x.valuation;
  const value = v && v.price_eth != null
    ? el("div", { class: "val" }, fmtEth(v.price_eth), el("span", { class: "pl" }, `P(liquid) ${fmtPct(v.p_liquid)}`))
    : el("div", { class: "val" }, el("span", { class: "pending" }, "valuing…"));
  const li = el("li", { class: `listing${fresh ? " fresh" : ""}`, "data-key": listingKey(x), "data-v": String(v?.id ?? "") },
    img,
    el("div", {}, el("div", { class: "name" }, x.name || `#${x.token_id}`),
      el("div", { class: "ask" }, `ask ${fmtEth(x.price_eth)} · `,
        el("span", { class: "venue" }, venueName(x.venue)), ` · ${short(x.contract)}`)),
    value);
  li.addEventListener("click", () => loadToken(x.chain_id, x.contract, x.token_id));
  return li;
}

function upsertListing(x) {
  const k = listingKey(x);
  const old = listingRows.get(k);
  if (x.status && x.status !== "active") {
    listingRows.delete(k); // cancelled, sold or expired: it left the book
  } else if (x.order_hash || !old || x.block_number > old.block_number ||
      (x.block_number === old.block_number && x.log_index >= old.log_index)) {
    listingRows.set(k, x);
  }
  if (current && k === tokenPath(current.chain, current.contract, current.tokenId) && x.valuation) {
    renderValuation(x.valuation, null);
  }
}

function setLive(state, text) {
  $("live-dot").className = `dot ${state}`;
  $("live-text").textContent = text;
}

async function startListings() {
  if (streamAbort) streamAbort.abort();
  const controller = new AbortController();
  streamAbort = controller;
  let cursor = null;
  while (!controller.signal.aborted && key()) {
    try {
      if (cursor === null) {
        const r = await api("/v1/listings/recent?limit=30");
        for (const x of r.body.listings) upsertListing(x);
        renderListings();
        cursor = r.body.cursor;
      }
      cursor = await followStream(cursor, controller.signal);
    } catch (e) {
      if (controller.signal.aborted) return;
      setLive("down", "reconnecting…");
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }
}

// Reads text/event-stream from fetch (headers allowed) and returns the last cursor seen.
async function followStream(cursor, signal) {
  const response = await fetch(`/v1/listings/stream?cursor=${encodeURIComponent(cursor)}`, {
    headers: { "X-API-Key": key(), Accept: "text/event-stream" }, signal,
  });
  if (response.status === 401) { askForKey("That API key was refused."); return cursor; }
  if (!response.ok) throw new ApiError(response.status, "stream refused");
  setLive("live", "live");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return cursor;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("id: ")) cursor = line.slice(4);
        else if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (event === "listing" && data) {
        upsertListing(JSON.parse(data));
        renderListings();
      }
    }
  }
}

// ------------------------------------------------------------------ wiring

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const value = $("api-key").value.trim();
  if (!value) return;
  sessionStorage.setItem(KEY_STORE, value);
  $("api-key").value = "";
  $("lookup-error").textContent = "";
  keyReady();
});
$("key-clear").addEventListener("click", () => askForKey(""));
$("lookup").addEventListener("submit", (e) => {
  e.preventDefault();
  if (!key()) { askForKey("Enter the API key first."); return; }
  const contract = $("contract").value.trim();
  const tokenId = $("token-id").value.trim();
  if (!/^0x[0-9a-fA-F]{40}$/.test(contract)) { $("lookup-error").textContent = "Contract must be 0x and 40 hex digits."; return; }
  if (!/^[0-9]+$/.test(tokenId)) { $("lookup-error").textContent = "Token id must be a whole number."; return; }
  loadToken(Number($("chain").value), contract, tokenId);
});
$("revalue").addEventListener("click", async () => {
  $("revalue").disabled = true;
  try { await requestValuation(null); if (current) await loadToken(current.chain, current.contract, current.tokenId); }
  catch (e) { $("lookup-error").textContent = e.message; }
  finally { $("revalue").disabled = false; }
});

fetch("/healthz").then((r) => r.json()).then((h) => { if (h.chain_id) $("chain").value = h.chain_id; }).catch(() => {});
if (key()) keyReady(); else askForKey("");
