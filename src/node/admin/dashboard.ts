/**
 * The dashboard page of the admin API: `/` (HTML),
 * `/dashboard.js` and `/dashboard.css`. Self-contained (no external resources) and compatible
 * with the admin server's strict Content-Security-Policy: no inline script or style, the
 * script is a same-origin file, charts are SVG built with DOM calls.
 *
 * The script polls `/status` and `/history` every 2 s and draws: a cluster map (one circle per
 * node, fill = role, ring = health, lines from the publisher), a node table (with each
 * node's requests), health over time (one row per node), traffic per node (requests per
 * interval, one line per node: this node's own counters, the peers' from their mesh
 * heartbeats) and the publish history. On a member the summary shows the publisher's
 * revision and HSDir acceptance as the publisher's heartbeats report them. Node names come from other nodes over the mesh, so the script only ever
 * sets them with `textContent` (never as HTML).
 *
 * Role colours (the integration test looks for them in a screenshot): publisher #f59e0b,
 * member #3b82f6, alone #9ca3af; health: #16a34a healthy, #dc2626 not. Traffic lines use
 * {@link DASHBOARD_SERIES_COLORS}, none of which is a role or health colour.
 */

/** Colours of the per-node traffic lines, in node-name order (cycled). */
export const DASHBOARD_SERIES_COLORS = ['#7c3aed', '#0891b2', '#db2777', '#65a30d', '#ea580c', '#4f46e5', '#0d9488', '#a16207'] as const;

/** Colours used by the dashboard (exported for tests). */
export const DASHBOARD_COLORS = {
  publisher: '#f59e0b',
  member: '#3b82f6',
  alone: '#9ca3af',
  healthy: '#16a34a',
  unhealthy: '#dc2626',
  background: '#f8fafc',
} as const;

/** `/` */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>torbalance dashboard</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>torbalance</h1>
  <div id="master" class="mono"></div>
  <div id="updated" class="muted">loading…</div>
</header>
<main>
  <section class="card wide" id="summary-card">
    <div class="kv"><span>this node</span><b id="self-name">–</b></div>
    <div class="kv"><span>publisher</span><b id="publisher">–</b></div>
    <div class="kv"><span>descriptor revision</span><b id="revision" class="mono">–</b></div>
    <div class="kv"><span>HSDirs accepted</span><b id="hsdirs">–</b></div>
    <div class="kv"><span>next time period</span><b id="period">–</b></div>
    <div class="kv"><span>requests</span><b id="requests">–</b></div>
  </section>
  <section class="card">
    <h2>Cluster map</h2>
    <svg id="map" viewBox="0 0 480 300" role="img" aria-label="cluster map"></svg>
    <div class="legend">
      <span class="sw publisher"></span>publisher <span class="sw member"></span>member <span class="sw alone"></span>alone
      <span class="ring healthy"></span>healthy <span class="ring unhealthy"></span>unhealthy
    </div>
  </section>
  <section class="card">
    <h2>Nodes</h2>
    <table id="nodes"><thead><tr><th>node</th><th>role</th><th>state</th><th>health</th><th>intro points</th><th>requests</th><th>last seen</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Health over time</h2>
    <svg id="health" viewBox="0 0 480 160" role="img" aria-label="health over time"></svg>
  </section>
  <section class="card">
    <h2>Traffic per node</h2>
    <svg id="traffic" viewBox="0 0 480 190" role="img" aria-label="traffic per node"></svg>
    <div class="legend">requests / interval, one line per node (totals over the window)</div>
  </section>
  <section class="card wide">
    <h2>Publish history</h2>
    <table id="publishes"><thead><tr><th>time</th><th>reason</th><th>nodes</th><th>intro points</th><th>uploaded</th><th>failed</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;

/** `/dashboard.css` */
export const DASHBOARD_CSS = `*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Liberation Sans",Arial,sans-serif;background:${DASHBOARD_COLORS.background};color:#0f172a}
header{display:flex;gap:1.5em;align-items:baseline;padding:.8em 1.2em;background:#0f172a;color:#f8fafc}
header h1{margin:0;font-size:1.3em}
.mono{font-family:"Liberation Mono",monospace;font-size:.9em;word-break:break-all}
.muted{color:#94a3b8;margin-left:auto}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:1em;padding:1em}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:.8em 1em}
.wide{grid-column:1/-1}
h2{margin:0 0 .5em;font-size:1.05em}
#summary-card{display:flex;flex-wrap:wrap;gap:1.5em}
.kv span{display:block;color:#64748b;font-size:.85em}
svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid #e2e8f0}
.legend{color:#475569;font-size:.85em;margin-top:.4em}
.sw,.ring{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:middle;border-radius:50%}
.sw.publisher{background:${DASHBOARD_COLORS.publisher}}.sw.member{background:${DASHBOARD_COLORS.member}}.sw.alone{background:${DASHBOARD_COLORS.alone}}
.ring{border:3px solid}.ring.healthy{border-color:${DASHBOARD_COLORS.healthy}}.ring.unhealthy{border-color:${DASHBOARD_COLORS.unhealthy}}
.role-publisher{color:#b45309;font-weight:600}.role-member{color:#1d4ed8}.role-alone{color:#6b7280}
.ok{color:${DASHBOARD_COLORS.healthy}}.bad{color:${DASHBOARD_COLORS.unhealthy}}
`;

/** `/dashboard.js` */
export const DASHBOARD_JS = `'use strict';
(function () {
  var C = ${JSON.stringify(DASHBOARD_COLORS)};
  var SERIES = ${JSON.stringify(DASHBOARD_SERIES_COLORS)};
  var NS = 'http://www.w3.org/2000/svg';
  function $(id) { return document.getElementById(id); }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function setText(id, t) { var e = $(id); if (e) e.textContent = t; }
  function roleColor(r) { return C[r] || C.alone; }
  function ago(ms) {
    if (ms === null || ms === undefined) return 'never';
    if (ms < 1500) return 'now';
    var s = Math.round(ms / 1000);
    return s < 120 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  }
  function dur(s) {
    if (s === null || s === undefined) return '–';
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + x + 's';
  }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function cell(tr, text, cls) { var td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }

  function drawMap(st) {
    var m = $('map'); clear(m);
    var nodes = st.cluster ? st.cluster.nodes : [{ id: st.node.name, name: st.node.name, role: 'alone', healthy: st.health.healthy, introPoints: st.health.introPoints, self: true, state: 'self' }];
    var n = nodes.length, cx = 240, cy = 140, R = n > 1 ? 95 : 0;
    var pos = {};
    nodes.forEach(function (node, i) {
      var a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      pos[node.id] = [cx + R * Math.cos(a), cy + R * Math.sin(a)];
    });
    var pub = st.cluster && st.cluster.publisher ? st.cluster.publisher.id : null;
    if (pub && pos[pub]) {
      nodes.forEach(function (node) {
        if (node.id === pub) return;
        m.appendChild(svg('line', { x1: pos[pub][0], y1: pos[pub][1], x2: pos[node.id][0], y2: pos[node.id][1], stroke: '#cbd5e1', 'stroke-width': 3, 'stroke-dasharray': node.state === 'dead' || node.state === 'left' ? '6 6' : '' }));
      });
    }
    nodes.forEach(function (node) {
      var p = pos[node.id];
      var g = svg('g', { 'class': 'node', 'data-name': node.name, 'data-role': node.role });
      var dead = node.state === 'dead' || node.state === 'left';
      g.appendChild(svg('circle', { cx: p[0], cy: p[1], r: 38, fill: roleColor(node.role), 'fill-opacity': dead ? 0.3 : 1, stroke: node.healthy ? C.healthy : C.unhealthy, 'stroke-width': 7 }));
      g.appendChild(svg('text', { x: p[0], y: p[1] + 5, 'text-anchor': 'middle', 'font-size': 14, 'font-weight': 700, fill: '#ffffff' }, String(node.introPoints)));
      g.appendChild(svg('text', { x: p[0], y: p[1] + 60, 'text-anchor': 'middle', 'font-size': 14, fill: '#0f172a' }, node.name + (node.self ? ' (this)' : '')));
      g.appendChild(svg('text', { x: p[0], y: p[1] + 76, 'text-anchor': 'middle', 'font-size': 11, fill: '#64748b' }, node.role + ' · ' + node.state));
      m.appendChild(g);
    });
  }

  function drawNodes(st) {
    var tb = $('nodes').tBodies[0]; clear(tb);
    var nodes = st.cluster ? st.cluster.nodes : [];
    nodes.forEach(function (node) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-node', node.name);
      cell(tr, node.name + (node.self ? ' (this)' : ''));
      cell(tr, node.role, 'role-' + node.role);
      cell(tr, node.state);
      cell(tr, node.healthy ? 'healthy' : 'unhealthy' + (node.reasons && node.reasons.length ? ' (' + node.reasons.join(', ') + ')' : ''), node.healthy ? 'ok' : 'bad');
      cell(tr, String(node.introPoints));
      cell(tr, node.traffic ? String(node.traffic.requests) : '–');
      cell(tr, node.self ? 'self' : ago(node.lastSeenAgoMs));
      tb.appendChild(tr);
    });
  }

  function drawSummary(st) {
    setText('master', st.node.masterAddress);
    setText('self-name', st.node.name + (st.cluster ? ' (' + st.cluster.role + ')' : ''));
    var pub = st.cluster && st.cluster.publisher;
    setText('publisher', pub ? (pub.name || pub.id.slice(0, 12)) : (st.cluster ? 'none' : 'tor (single node)'));
    var d = st.publish ? st.publish.descriptors : [];
    var rep = st.publish && st.publish.publisherReport;
    if (d.length && (st.publish.active || !(rep && rep.descriptors.length))) {
      setText('revision', d.map(function (x) { return x.descriptor + ' ' + x.revisionCounter; }).join(' / '));
      setText('hsdirs', d.map(function (x) { return x.descriptor + ' ' + x.accepted + '/' + x.total; }).join(', '));
    } else if (rep && rep.descriptors.length) {
      setText('revision', rep.descriptors.map(function (x) { return x.descriptor + ' ' + (x.revisionCounter === null ? '?' : x.revisionCounter); }).join(' / ') + ' (' + rep.name + ')');
      setText('hsdirs', rep.descriptors.map(function (x) { return x.descriptor + ' ' + (x.total === null ? '?' : x.accepted + '/' + x.total); }).join(', ') + ' (' + rep.name + ')');
    } else {
      setText('revision', pub && !(st.publish && st.publish.active) ? 'see ' + (pub.name || 'publisher') : '–');
      setText('hsdirs', '–');
    }
    setText('period', st.timePeriod ? dur(st.timePeriod.secondsToNext) : '–');
    setText('requests', String(st.proxy.requests) + ' (' + bytes(st.proxy.bytesOut) + ' out)');
    setText('updated', 'updated ' + new Date(st.generatedAt).toLocaleTimeString());
  }

  function drawHealth(h) {
    var e = $('health'); clear(e);
    var s = h.samples; if (!s.length) return;
    var ids = [], names = {};
    s.forEach(function (x) { x.nodes.forEach(function (n) { if (!(n.id in names)) { ids.push(n.id); } names[n.id] = n.name; }); });
    ids.sort(function (a, b) { return names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0; });
    var left = 80, w = 480 - left - 4, rowH = Math.min(30, 150 / Math.max(1, ids.length));
    var cw = w / s.length;
    ids.forEach(function (id, row) {
      var y = 4 + row * rowH;
      e.appendChild(svg('text', { x: 2, y: y + rowH * 0.65, 'font-size': 12, fill: '#0f172a' }, names[id]));
      s.forEach(function (x, i) {
        var n = null; x.nodes.forEach(function (q) { if (q.id === id) n = q; });
        var color = n === null ? '#e2e8f0' : (n.state === 'dead' || n.state === 'left') ? '#94a3b8' : n.healthy ? C.healthy : C.unhealthy;
        e.appendChild(svg('rect', { x: left + i * cw, y: y, width: Math.max(cw, 1), height: rowH - 4, fill: color }));
      });
    });
  }

  function drawTraffic(h) {
    var e = $('traffic'); clear(e);
    var s = h.samples; if (s.length < 2) { e.appendChild(svg('text', { x: 10, y: 80, 'font-size': 13, fill: '#64748b' }, 'collecting…')); return; }
    // one series per node id: requests (and bytes out) per interval from consecutive samples
    var ids = [], names = {};
    s.forEach(function (x) { (x.traffic || []).forEach(function (t) { if (!(t.id in names)) ids.push(t.id); names[t.id] = t.name; }); });
    ids.sort(function (a, b) { return names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : a < b ? -1 : 1; });
    function find(x, id) { var r = null; (x.traffic || []).forEach(function (t) { if (t.id === id) r = t; }); return r; }
    var series = ids.map(function (id) {
      var req = [], out = 0, total = 0;
      for (var i = 1; i < s.length; i++) {
        var a = find(s[i - 1], id), b = find(s[i], id);
        var d = a && b ? Math.max(0, b.requests - a.requests) : 0;
        req.push(d); total += d;
        if (a && b) out += Math.max(0, b.bytesOut - a.bytesOut);
      }
      return { name: names[id], req: req, total: total, out: out };
    });
    var max = 1;
    series.forEach(function (x) { x.req.forEach(function (v) { if (v > max) max = v; }); });
    e.appendChild(svg('line', { x1: 0, y1: 150, x2: 480, y2: 150, stroke: '#cbd5e1' }));
    e.appendChild(svg('text', { x: 4, y: 14, 'font-size': 11, fill: '#475569' }, 'max ' + max + ' req / interval'));
    if (series.length > 4) e.appendChild(svg('text', { x: 476, y: 14, 'font-size': 11, fill: '#475569', 'text-anchor': 'end' }, series.length + ' nodes (legend: first 4)'));
    series.forEach(function (x, k) {
      var color = SERIES[k % SERIES.length];
      var n = x.req.length;
      var pts = x.req.map(function (v, i) { return (n === 1 ? 0 : (i * 476) / (n - 1)) + 2 + ',' + (150 - (v / max) * 130).toFixed(1); }).join(' ');
      e.appendChild(svg('polyline', { points: pts, fill: 'none', stroke: color, 'stroke-width': 2.5, 'class': 'series', 'data-node': x.name }));
      if (k >= 4) return;
      var lx = 4 + (k % 2) * 240, ly = 170 + Math.floor(k / 2) * 16;
      e.appendChild(svg('rect', { x: lx, y: ly - 7, width: 12, height: 4, fill: color }));
      e.appendChild(svg('text', { x: lx + 16, y: ly - 2, 'font-size': 11, fill: '#0f172a' }, x.name + ': ' + x.total + ' req, ' + bytes(x.out) + ' out'));
    });
  }

  function drawPublishes(h) {
    var tb = $('publishes').tBodies[0]; clear(tb);
    var ev = h.publishEvents.slice(-15).reverse();
    if (!ev.length) { var tr0 = document.createElement('tr'); cell(tr0, 'no publish rounds on this node (only the publisher publishes)').colSpan = 6; tb.appendChild(tr0); return; }
    ev.forEach(function (p) {
      var tr = document.createElement('tr');
      tr.setAttribute('class', 'publish');
      cell(tr, new Date(p.atMs).toLocaleTimeString());
      cell(tr, p.reason);
      cell(tr, String(p.nodes));
      cell(tr, String(p.introPoints));
      cell(tr, String(p.uploaded), 'ok');
      cell(tr, String(p.failed), p.failed ? 'bad' : '');
      tb.appendChild(tr);
    });
  }

  function get(path) {
    return fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } }).then(function (r) {
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  var busy = false;
  function tick() {
    if (busy) return;
    busy = true;
    Promise.all([get('/status'), get('/history')]).then(function (r) {
      var errors = [];
      [[drawSummary, r[0]], [drawMap, r[0]], [drawNodes, r[0]], [drawHealth, r[1]], [drawTraffic, r[1]], [drawPublishes, r[1]]].forEach(function (d) {
        try { d[0](d[1]); } catch (e) { errors.push(e.message); }
      });
      if (errors.length) setText('updated', 'render error: ' + errors.join('; '));
      document.body.setAttribute('data-ready', '1');
    }).catch(function (err) {
      setText('updated', 'error: ' + err.message);
    }).then(function () { busy = false; });
  }
  tick();
  setInterval(tick, 2000);
})();
`;
