// The web view's page: draws the snapshots the server pushes (server-sent
// `ring` events, never polled), runs traces on request, lists the
// simulator's plots. Text from the nodes (peerlet names, publishers) is
// only ever set as textContent, never parsed as HTML.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const CENTER = 300;
const RADIUS = 250;

let snapshot = null;   // the last RingSnapshot
let picked = null;     // id of the node whose links and details are shown
let lastTrace = null;  // the last TraceView, redrawn over every snapshot
let previous = null;   // {at, counts by id}: for messages per second
let rates = {};

const $ = (id) => document.getElementById(id);
const short = (id) => id.slice(0, 8);

function el(tag, attrs, text) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Where a place on the ring (0..1 clockwise from id 0) is drawn: id 0 at the top.
function at(place, r = RADIUS) {
  const a = place * 2 * Math.PI - Math.PI / 2;
  return [CENTER + r * Math.cos(a), CENTER + r * Math.sin(a)];
}

function placeOf(id) {
  const k = snapshot.known.find((n) => n.id === id);
  return k ? k.place : null;
}

function line(layer, fromId, toId, cls) {
  const a = placeOf(fromId), b = placeOf(toId);
  if (a === null || b === null || fromId === toId) return;
  const [x1, y1] = at(a), [x2, y2] = at(b);
  layer.append(el('svg:line', { x1, y1, x2, y2, class: cls, 'data-from': fromId, 'data-to': toId }));
}

function clear(node) { while (node.firstChild) node.firstChild.remove(); }

function drawRing() {
  const ringLayer = $('ring-layer'), links = $('links-layer'), nodes = $('nodes-layer');
  [ringLayer, links, nodes].forEach(clear);
  ringLayer.append(el('svg:circle', { cx: CENTER, cy: CENTER, r: RADIUS, class: 'ring-line' }));
  const mine = new Map(snapshot.nodes.map((n) => [n.id, n]));
  const me = mine.get(picked);
  if (me && !me.error) {
    for (const f of me.fingers) line(links, me.id, f.id, 'finger');
    for (const s of me.successors) line(links, me.id, s, 'succ');
    if (me.predecessor) line(links, me.id, me.predecessor, 'pred');
  }
  for (const k of snapshot.known) {
    const [x, y] = at(k.place);
    const n = mine.get(k.id);
    const cls = ['node', n ? (n.error ? 'down' : 'mine') : 'known'];
    if (k.id === picked) cls.push('picked');
    const c = el('svg:circle', { cx: x, cy: y, r: 8, class: cls.join(' '), 'data-id': k.id });
    c.append(el('svg:title', {}, `${k.id}\n${k.addr}${n && n.error ? '\n' + n.error : ''}`));
    if (n) c.addEventListener('click', () => pick(k.id));
    nodes.append(c);
    const [lx, ly] = at(k.place, RADIUS + 22);
    nodes.append(el('svg:text', { x: lx, y: ly + 3, 'text-anchor': 'middle', class: 'node-label' }, short(k.id)));
  }
  drawTrace();
}

function drawTrace() {
  const layer = $('trace-layer');
  clear(layer);
  if (!lastTrace || !snapshot) return;
  const hops = lastTrace.hops;
  for (let i = 1; i < hops.length; i++) line(layer, hops[i - 1].id, hops[i].id, 'trace');
  hops.forEach((h) => {
    const p = placeOf(h.id);
    if (p === null) return;
    const [x, y] = at(p);
    layer.append(el('svg:circle', { cx: x, cy: y, r: 13, class: 'trace-hop', 'data-id': h.id, 'data-hop': h.hop }));
    const [lx, ly] = at(p, RADIUS - 30);
    layer.append(el('svg:text', { x: lx, y: ly, 'text-anchor': 'middle', class: 'trace-label' },
      `${h.hop}: ${h.ms.toFixed(1)} ms${h.root ? ' root' : ''}`));
  });
}

function fact(dl, name, value) {
  dl.append(el('dt', {}, name), el('dd', {}, value));
}

function drawNode() {
  const n = snapshot.nodes.find((x) => x.id === picked);
  const facts = $('node-facts'), queues = $('node-queues'), apps = $('apps').tBodies[0], fingers = $('fingers');
  [facts, queues, apps, fingers].forEach(clear);
  if (!n) return;
  fact(facts, 'id', n.id);
  fact(facts, 'address', n.addr);
  if (n.error) { fact(facts, 'error', n.error); return; }
  fact(facts, 'predecessor', n.predecessor || '(none)');
  n.successors.slice(0, 4).forEach((s, i) => fact(facts, `successor ${i}`, s));
  if (n.successors.length > 4) fact(facts, 'successors', `${n.successors.length} in all`);
  for (const a of n.apps) {
    const tr = el('tr', { 'data-app': a.app });
    [a.name + (a.stopped ? ' (stopped)' : ''), a.version, a.type, a.publisher, a.memory, a.instructions,
      a.messages_in, a.messages_out, a.aborts].forEach((v, i) => tr.append(el('td', i > 3 ? { class: 'num' } : {}, String(v))));
    apps.append(tr);
  }
  const t = n.traffic, q = n.queues;
  fact(queues, 'messages', `in ${t.messages_in}, out ${t.messages_out} (${(rates[n.id] || 0).toFixed(1)}/s)`);
  fact(queues, 'bytes', `in ${t.bytes_in}, out ${t.bytes_out}`);
  fact(queues, 'dropped', String(t.dropped));
  fact(queues, 'waiting', `incoming ${q.incoming}, control ${q.control}, hops ${q.hops}, lookups ${q.lookups}, peerlet calls ${q.peerlet_calls}`);
  const out = q.outgoing.map(([addr, depth]) => `${addr}: ${depth}`).join(', ') || '(none)';
  fact(queues, `out queues (of ${q.capacity})`, out);
  for (const f of n.fingers) fingers.append(el('li', {}, `${f.label} → ${short(f.id)}`));
}

function drawTables() {
  const body = $('nodes-table').tBodies[0];
  clear(body);
  const deployments = [];
  snapshot.nodes.forEach((n, i) => {
    const tr = el('tr', { 'data-id': n.id, class: n.id === picked ? 'picked' : '' });
    tr.addEventListener('click', () => pick(n.id));
    const cells = n.error
      ? [i, short(n.id), n.addr, n.error]
      : [i, short(n.id), n.addr, n.apps.length, n.traffic.messages_in, n.traffic.messages_out,
        (rates[n.id] || 0).toFixed(1), n.traffic.bytes_in, n.traffic.bytes_out, n.traffic.dropped,
        n.queues.incoming, n.queues.hops, n.queues.outgoing.reduce((s, [, d]) => s + d, 0)];
    cells.forEach((v, k) => tr.append(el('td', k > 2 ? { class: 'num' } : {}, String(v))));
    body.append(tr);
    // Each node keeps its recent deployments, oldest first: newest first here.
    if (!n.error) n.deployments.slice().reverse().forEach((d) => deployments.push([i, d]));
  });
  const dep = $('deployments').tBodies[0];
  clear(dep);
  for (const [i, d] of deployments.slice(0, 100)) {
    const tr = el('tr');
    [i, d.name, d.version, d.source, `${d.fetch_ms.toFixed(1)} ms`, `${d.verify_ms.toFixed(1)} ms`, `${d.start_ms.toFixed(1)} ms`]
      .forEach((v) => tr.append(el('td', {}, String(v))));
    dep.append(tr);
  }
  $('no-deployments').hidden = deployments.length > 0;
}

function drawPicker() {
  const sel = $('node-pick');
  const ids = snapshot.nodes.map((n) => n.id).join();
  if (sel.dataset.ids !== ids) {
    clear(sel);
    snapshot.nodes.forEach((n, i) => sel.append(el('option', { value: n.id }, `${i}: ${short(n.id)} ${n.addr}`)));
    sel.dataset.ids = ids;
  }
  sel.value = picked;
}

function pick(id) {
  picked = id;
  draw();
}

function measureRates() {
  const now = performance.now();
  const counts = {};
  for (const n of snapshot.nodes) if (!n.error) counts[n.id] = n.traffic.messages_in + n.traffic.messages_out;
  if (previous) {
    const secs = (now - previous.at) / 1000;
    for (const id in counts) if (id in previous.counts && secs > 0) rates[id] = (counts[id] - previous.counts[id]) / secs;
  }
  previous = { at: now, counts };
}

function draw() {
  if (!snapshot) return;
  if (!snapshot.nodes.some((n) => n.id === picked) && snapshot.nodes.length) picked = snapshot.nodes[0].id;
  drawRing();
  drawPicker();
  drawNode();
  drawTables();
  const shown = snapshot.nodes.length;
  $('summary').textContent = `${snapshot.known.length} node(s) on the ring as known here; ${shown} of this process shown in full`;
  document.body.dataset.nodes = String(snapshot.known.length);
}

function connect() {
  const events = new EventSource('/events');
  events.addEventListener('ring', (e) => {
    snapshot = JSON.parse(e.data);
    measureRates();
    document.body.dataset.state = 'live';
    $('status').textContent = 'live';
    draw();
  });
  events.onerror = () => {
    document.body.dataset.state = 'reconnecting';
    $('status').textContent = 'reconnecting…';
  };
}

async function runTrace(ev) {
  ev.preventDefault();
  const key = $('trace-key').value;
  const status = $('trace-status');
  status.className = '';
  status.textContent = 'tracing…';
  document.body.dataset.trace = 'running';
  try {
    const resp = await fetch('/api/trace', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ key, from: picked }),
    });
    if (!resp.ok) throw new Error(await resp.text());
    lastTrace = await resp.json();
    status.textContent = `to ${short(lastTrace.key)} from ${short(lastTrace.from)}: ${lastTrace.hops.length} node(s)` +
      (lastTrace.incomplete ? ` (incomplete: ${lastTrace.incomplete})` : '');
    drawTraceTable();
    drawTrace();
  } catch (e) {
    status.className = 'error';
    status.textContent = String(e.message || e);
  }
  document.body.dataset.traces = String(Number(document.body.dataset.traces || 0) + 1);
  document.body.dataset.trace = 'done';
}

function drawTraceTable() {
  const body = $('trace-hops').tBodies[0];
  clear(body);
  for (const h of lastTrace.hops) {
    const tr = el('tr', { 'data-id': h.id, 'data-hop': h.hop });
    [h.hop, short(h.id), h.addr, `${h.ms.toFixed(2)} ms`, h.root ? 'root' : ''].forEach((v) => tr.append(el('td', {}, String(v))));
    body.append(tr);
  }
}

async function listPlots() {
  try {
    const resp = await fetch('/api/runs');
    const { plots } = await resp.json();
    if (!plots) return;
    $('sim-runs').hidden = false;
    const list = $('plots');
    if (!plots.length) list.append(el('li', {}, 'no .svg files in the run directory yet'));
    for (const p of plots) {
      const a = el('a', { href: '/runs/' + p }, p);
      a.addEventListener('click', (e) => {
        e.preventDefault();
        const img = $('plot');
        img.src = a.getAttribute('href');
        img.alt = p;
        img.hidden = false;
      });
      const li = el('li');
      li.append(a);
      list.append(li);
    }
  } catch (e) {
    // No run directory: the section stays hidden.
  }
}

$('trace-form').addEventListener('submit', runTrace);
$('node-pick').addEventListener('change', (e) => pick(e.target.value));
connect();
listPlots();
