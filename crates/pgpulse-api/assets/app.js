// pgpulse dashboard. Server data is only ever put into the page as text
// (textContent / text nodes via el()); never through innerHTML.
'use strict';

(function () {
  const API = '/api/performance';
  const KEY_STORE = 'pgpulse.apiKey';
  const LIVE_MS = 2000;
  const LISTS_MS = 15000;
  const LIVE_WINDOW_S = 3600;

  const $ = (id) => document.getElementById(id);
  let key = sessionStorage.getItem(KEY_STORE);
  let liveTimer = null;
  let listsTimer = null;
  let pausedUntil = 0;
  let selectedSlow = null;
  let lastLists = {};
  const charts = {};
  const samples = { cache: [], pools: [] };
  let lastHistory = { cache: { t: [], hit_rate: [] }, pools: { t: [], utilization: [] } };

  // ---------------------------------------------------------------- DOM

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = String(v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function replace(id, ...nodes) {
    // Absent parts (null, false) are skipped, not shown as text.
    $(id).replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
  }

  const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const nf2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  const num = (v) => (v === null || v === undefined ? '–' : nf.format(v));
  const pct = (v) => (v === null || v === undefined ? '–' : nf.format(v * 100) + ' %');
  const msFmt = (v) => (v === null || v === undefined ? '–' : (v >= 100 ? nf.format(v) : nf2.format(v)) + ' ms');
  function when(t) {
    if (!t) return '–';
    const d = new Date(t);
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString() : d.toLocaleString();
  }
  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return nf.format(n) + ' ' + u[i];
  }

  // ---------------------------------------------------------------- API

  class ApiFailure extends Error {
    constructor(status, message, body) { super(message); this.status = status; this.body = body; }
  }

  async function api(path, opts = {}) {
    const headers = { Authorization: 'Bearer ' + key, Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    let resp;
    try {
      resp = await fetch(API + path, {
        method: opts.method || 'GET', headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiFailure(0, 'Cannot reach pgpulse: ' + e.message);
    }
    if (resp.ok) return opts.raw ? resp : resp.json();
    let body = null;
    try { body = await resp.json(); } catch (_) { /* not JSON */ }
    const detail = body && body.error && body.error.message ? body.error.message : resp.statusText;
    const err = new ApiFailure(resp.status, detail, body);
    err.retryAfter = Number(resp.headers.get('Retry-After')) || 0;
    handleAuthFailure(err);
    throw err;
  }

  function describe(err) {
    switch (err.status) {
      case 0: return err.message;
      case 401: return 'The API key was not accepted (401): ' + err.message + '. Sign in again.';
      case 403: return 'This key is not an admin key (403): the dashboard needs the admin role.';
      case 404: return 'Not available on this server (404): ' + err.message;
      case 429: return 'Rate limited (429): retrying in ' + (err.retryAfter || 1) + ' s.';
      default: return 'Request failed (' + err.status + '): ' + err.message;
    }
  }

  function handleAuthFailure(err) {
    if (err.status === 401 || err.status === 403) {
      showLogin(describe(err));
    } else if (err.status === 429) {
      pausedUntil = Date.now() + (err.retryAfter || 1) * 1000;
      banner(describe(err), 'warn');
    }
  }

  function banner(text, kind) {
    const b = $('banner');
    if (!text) { b.hidden = true; return; }
    b.textContent = text;
    b.className = 'banner' + (kind ? ' ' + kind : '');
    b.hidden = false;
  }

  // ---------------------------------------------------------------- login

  function showLogin(message) {
    stopPolling();
    sessionStorage.removeItem(KEY_STORE);
    key = null;
    $('app-view').hidden = true;
    $('topbar-status').hidden = true;
    $('login-view').hidden = false;
    banner(null);
    const e = $('login-error');
    e.textContent = message || '';
    e.hidden = !message;
    $('api-key').focus();
  }

  async function signIn(candidate) {
    key = candidate;
    $('login-submit').disabled = true;
    try {
      const data = await api('/dashboard');
      sessionStorage.setItem(KEY_STORE, key);
      $('login-view').hidden = true;
      $('app-view').hidden = false;
      $('topbar-status').hidden = false;
      renderAll(data);
      startPolling();
    } catch (err) {
      if (err.status !== 401 && err.status !== 403) showLogin(describe(err));
    } finally {
      $('login-submit').disabled = false;
    }
  }

  // ---------------------------------------------------------------- polling

  function stopPolling() {
    clearInterval(liveTimer);
    clearInterval(listsTimer);
    liveTimer = listsTimer = null;
  }

  function startPolling() {
    stopPolling();
    liveTimer = setInterval(() => refresh(true), LIVE_MS);
    listsTimer = setInterval(() => refresh(false), LISTS_MS);
  }

  let inFlight = false;
  async function refresh(liveOnly) {
    // A hidden tab does not poll (it catches up when shown again).
    if (inFlight || document.hidden || Date.now() < pausedUntil || !key) return;
    inFlight = true;
    try {
      const data = await api(liveOnly ? '/dashboard?only=live' : '/dashboard');
      banner(null);
      $('live-indicator').classList.remove('paused');
      if (liveOnly) renderLive(data); else renderAll(data);
    } catch (err) {
      $('live-indicator').classList.add('paused');
      if (err.status !== 401 && err.status !== 403 && err.status !== 429) banner(describe(err));
    } finally {
      inFlight = false;
    }
  }

  // ---------------------------------------------------------------- render: live

  function renderAll(d) {
    renderLive(d);
    renderLists(d);
  }

  function renderLive(d) {
    const s = d.status || {};
    const pill = $('health-pill');
    pill.textContent = s.status || 'unknown';
    pill.className = 'pill ' + (s.status || '');
    $('store-backend').textContent = s.store ? 'store: ' + s.store.backend : '';
    $('updated-at').textContent = 'updated ' + new Date().toLocaleTimeString();
    // Server time: the stored history uses the server's clock too.
    const now = d.generated_at ? Date.parse(d.generated_at) / 1000 : Date.now() / 1000;
    // A cache without lookups yet has no hit rate to plot.
    const g = d.cache && d.cache.global;
    if (g && g.hits + g.misses > 0) samples.cache.push([now, g.hit_rate]);
    const pools = d.pools || [];
    const size = pools.reduce((a, p) => a + p.pool_size, 0);
    if (size > 0) samples.pools.push([now, pools.reduce((a, p) => a + p.servers_active, 0) / size]);
    for (const k of Object.keys(samples)) samples[k] = samples[k].filter((p) => p[0] > now - LIVE_WINDOW_S);
    renderKpis(d);
    renderCharts(d);
    renderCacheTables(d.cache);
    renderPools(pools);
  }

  function kpi(id, label, value, sub, level) {
    return el('div', { class: 'kpi' + (level ? ' ' + level : ''), id: 'kpi-' + id, dataset: { testid: id } },
      el('div', { class: 'label', text: label }),
      el('div', { class: 'value', text: value }),
      el('div', { class: 'sub', text: sub || '\u00a0' }));
  }

  function renderKpis(d) {
    const s = d.status || {};
    const t = s.throughput || {};
    const l = s.latency || {};
    const r = d.rates || {};
    const c = s.cache;
    const p = s.pool;
    const open = s.open_alerts;
    const pools = d.pools || [];
    const size = pools.reduce((a, x) => a + x.pool_size, 0);
    const hist = (d.history || lastHistory).pools.utilization;
    const util = size ? pools.reduce((a, x) => a + x.servers_active, 0) / size
      : (hist && hist.length ? hist[hist.length - 1] : null);
    replace('kpis',
      kpi('qps', 'Throughput', t.qps === undefined ? '–' : nf2.format(t.qps) + '/s', num(t.calls_last_minute) + ' statements in the last minute'),
      kpi('p95', 'Latency p95', msFmt(l.p95_ms), l.minutes ? 'worst minute, last ' + l.minutes + ' min' : ''),
      kpi('mean', 'Mean latency', msFmt(l.mean_ms), l.calls !== undefined ? num(l.calls) + ' calls' : ''),
      kpi('errors', 'Error rate', pct(r.error_rate), num(r.errors_last_minute) + ' failed in the last minute', r.error_rate > 0.01 ? 'bad' : ''),
      c && c.hits + c.misses === 0
        ? kpi('cache', 'Cache hit rate', '–', 'no lookups yet · ' + c.mode)
        : kpi('cache', 'Cache hit rate', c ? pct(c.hit_rate) : 'off', c ? num(c.hits) + ' hits · ' + c.mode : 'cache not configured'),
      kpi('pool', 'Pool utilization', util === null ? '–' : pct(util), p && p.pools ? num(p.clients) + ' clients · ' + num(p.clients_waiting) + ' waiting' : (util === null ? 'no pools' : 'last stored snapshot'), p && p.clients_waiting > 0 ? 'warn' : ''),
      kpi('alerts', 'Open alerts', open === null || open === undefined ? '–' : num(open), 'not yet acknowledged', open > 0 ? 'bad' : ''));
  }

  function chartOpts(el, series, yFmt, yRange) {
    const w = Math.max(el.clientWidth, 200);
    return {
      width: w, height: 200,
      padding: [10, 34, 0, 0],
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: yRange ? { range: yRange } : { range: (u, min, max) => [0, Math.max(max * 1.15, 1e-9)] } },
      axes: [
        { stroke: '#667085', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#eef1f5' } },
        { stroke: '#667085', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#eef1f5' }, size: 56, values: (u, vals) => vals.map(yFmt) },
      ],
      series: [{}].concat(series),
    };
  }

  function drawChart(id, series, data, yFmt, yRange) {
    const box = $(id);
    const hasData = data[0].length > 0;
    if (!hasData) {
      if (charts[id]) { charts[id].destroy(); delete charts[id]; }
      replace(id, el('div', { class: 'empty', text: 'No data yet' }));
      return;
    }
    if (!charts[id]) {
      box.replaceChildren();
      charts[id] = new uPlot(chartOpts(box, series, yFmt, yRange), data, box);
    } else {
      charts[id].setData(data);
    }
  }

  function merge(history, live) {
    const pts = history.concat(live).sort((a, b) => a[0] - b[0]);
    return [pts.map((p) => p[0]), pts.map((p) => p[1])];
  }

  function renderCharts(d) {
    if (typeof uPlot === 'undefined') return;
    const s = d.series;
    if (s) {
      drawChart('chart-throughput', [{ label: 'statements/s', stroke: '#2563eb', width: 2, fill: 'rgba(37,99,235,.08)' }],
        [s.t, s.qps], (v) => nf2.format(v));
      drawChart('chart-latency', [
        { label: 'p95', stroke: '#dc2626', width: 2, spanGaps: false },
        { label: 'mean', stroke: '#f59e0b', width: 1.5, spanGaps: false },
      ], [s.t, s.p95_ms, s.mean_ms], (v) => nf2.format(v));
    } else {
      replace('chart-throughput', el('div', { class: 'empty', text: 'Live statistics are not configured' }));
      replace('chart-latency', el('div', { class: 'empty', text: 'Live statistics are not configured' }));
    }
    // Stored history comes with the lists (every 15 s); live samples between.
    if (d.history) lastHistory = d.history;
    const h = lastHistory;
    const pctFmt = (v) => nf.format(v * 100);
    drawChart('chart-cache', [{ label: 'hit rate', stroke: '#059669', width: 2, fill: 'rgba(5,150,105,.08)' }],
      merge(h.cache.t.map((t, i) => [t, h.cache.hit_rate[i]]), samples.cache), pctFmt, [0, 1]);
    drawChart('chart-pools', [{ label: 'utilization', stroke: '#7c3aed', width: 2, fill: 'rgba(124,58,237,.08)' }],
      merge(h.pools.t.map((t, i) => [t, h.pools.utilization[i]]), samples.pools), pctFmt, [0, 1]);
  }

  window.addEventListener('resize', () => {
    for (const [id, c] of Object.entries(charts)) c.setSize({ width: Math.max($(id).clientWidth, 200), height: 200 });
  });

  function table(head, rows, numeric) {
    return el('table', {},
      el('thead', {}, el('tr', {}, head.map((h, i) => el('th', { class: numeric && numeric[i] ? 'num' : null, text: h })))),
      el('tbody', {}, rows));
  }

  function renderCacheTables(cache) {
    if (!cache) { replace('cache-tables', el('p', { class: 'empty-note', text: 'The result cache is not configured.' })); return; }
    const rows = cache.tables.map((t) => el('tr', {},
      el('td', { class: 'mono', text: t.table }),
      el('td', { class: 'num', text: pct(t.hit_rate) }),
      el('td', { class: 'num', text: num(t.hits) }),
      el('td', { class: 'num', text: num(t.misses) }),
      el('td', { class: 'num', text: num(t.invalidations) })));
    const g = cache.global;
    // Why lookups missed: mostly cold keys want more reads of the same
    // rows, mostly invalidated ones fewer or narrower writes.
    const m = g.miss_causes;
    const causes = m ? 'misses: ' + ['cold', 'invalidated', 'expired', 'suspended'].map((c) => num(m[c]) + ' ' + c).join(' · ') : '';
    replace('cache-tables',
      el('p', { class: 'muted', text: num(g.entries) + ' entries · ' + bytes(g.bytes) + ' · ' + num(g.evictions) + ' evictions' }),
      el('p', { class: 'muted', dataset: { role: 'miss-causes' }, text: causes }),
      rows.length ? table(['table', 'hit rate', 'hits', 'misses', 'invalidations'], rows, [0, 1, 1, 1, 1])
        : el('p', { class: 'empty-note', text: 'No table has been cached yet.' }));
  }

  function renderPools(pools) {
    if (!pools.length) { replace('pools', el('p', { class: 'empty-note', text: 'No pool is open.' })); return; }
    replace('pools', table(['database', 'user', 'mode', 'size', 'active', 'idle', 'clients', 'waiting', 'avg wait'],
      pools.map((p) => el('tr', {},
        el('td', { text: p.database }), el('td', { text: p.user_name }), el('td', { text: p.mode }),
        el('td', { class: 'num', text: p.pool_size }), el('td', { class: 'num', text: p.servers_active }),
        el('td', { class: 'num', text: p.servers_idle }), el('td', { class: 'num', text: p.clients }),
        el('td', { class: 'num', text: p.clients_waiting }), el('td', { class: 'num', text: msFmt(p.avg_wait_ms) }))),
      [0, 0, 0, 1, 1, 1, 1, 1, 1]));
  }

  // ---------------------------------------------------------------- render: lists

  function changed(name, value) {
    const sig = JSON.stringify(value);
    if (lastLists[name] === sig) return false;
    lastLists[name] = sig;
    return true;
  }

  function renderLists(d) {
    // Keep what the user is doing: no re-render under an open form.
    const busy = document.activeElement && document.activeElement.closest && document.activeElement.closest('#alerts, #recommendations');
    if (!busy && changed('alerts', [d.alerts, d.acknowledged_alerts])) renderAlerts(d.alerts, d.acknowledged_alerts);
    if (!busy && changed('recs', d.recommendations)) renderRecommendations(d.recommendations);
    if (changed('slow', d.slow_queries)) renderSlow(d.slow_queries);
    if (changed('reports', d.reports)) renderReports(d.reports);
    if (changed('baselines', d.baselines)) renderBaselines(d.baselines);
  }

  function severityPill(sev) { return el('span', { class: 'pill ' + sev, text: sev }); }

  function alertItem(a) {
    const acked = a.status === 'acknowledged';
    const item = el('div', { class: 'item' + (acked ? ' acked' : ''), dataset: { alertId: a.id } },
      el('div', { class: 'item-head' },
        severityPill(a.severity),
        el('span', { class: 'item-title', text: a.title }),
        el('span', { class: 'pill ' + a.status, dataset: { role: 'status' }, text: a.status })),
      el('div', { class: 'item-body', text: a.message }),
      el('div', { class: 'item-meta', text: 'rule ' + a.rule + ' · first ' + when(a.created_at) + ' · last ' + when(a.last_seen_at) + ' · ' + a.occurrences + '×' }));
    if (acked) {
      item.append(el('div', { class: 'item-meta', text: 'Acknowledged by ' + a.acknowledged_by + ' at ' + when(a.acknowledged_at) + (a.ack_comment ? ': “' + a.ack_comment + '”' : '') }));
    } else {
      const comment = el('input', { type: 'text', placeholder: 'Comment (optional)', maxlength: 2000, 'aria-label': 'Acknowledgement comment' });
      const msg = el('span', { class: 'error' });
      const btn = el('button', { type: 'button', class: 'btn btn-primary btn-small', text: 'Acknowledge' });
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        msg.textContent = '';
        try {
          const body = comment.value.trim() ? { comment: comment.value.trim() } : {};
          const updated = await api('/alerts/' + encodeURIComponent(a.id) + '/acknowledge', { method: 'POST', body });
          item.replaceWith(alertItem(updated));
          lastLists.alerts = null;
          refresh(true); // the open-alerts tile
        } catch (err) {
          msg.textContent = describe(err);
          btn.disabled = false;
        }
      });
      item.append(el('div', { class: 'item-actions' }, comment, btn, msg));
    }
    return item;
  }

  function renderAlerts(open, acked) {
    $('alerts-count').textContent = open.total;
    const nodes = open.items.map(alertItem);
    if (!nodes.length) nodes.push(el('p', { class: 'empty-note', text: 'No open alert.' }));
    if (open.total > open.items.length) nodes.push(more(open, 'open alerts', '/alerts?status=open'));
    if (acked && acked.items.length) {
      nodes.push(el('div', { class: 'subhead', text: 'Acknowledged (' + acked.total + ')' }));
      nodes.push(...acked.items.map(alertItem));
    }
    replace('alerts', nodes);
  }

  function recResult(box, ok, ...content) {
    box.className = 'result ' + (ok ? 'ok' : 'failed');
    box.replaceChildren(...content.filter((n) => n !== null && n !== undefined && n !== false));
    box.hidden = false;
  }

  async function implement(rec, dryRun, box, buttons) {
    buttons.forEach((b) => { b.disabled = true; });
    try {
      // The advisor answers an ImplementOutcome: statement | action,
      // dry_run, executed, status, sqlstate, error.
      const r = await api('/recommendations/' + encodeURIComponent(rec.id) + '/implement', { method: 'POST', body: { dry_run: dryRun } });
      const stmt = r.statement || (r.action ? JSON.stringify(r.action, null, 2) : null) || (dryRun ? rec.statement : null);
      const failed = Boolean(r.error) || (!dryRun && r.executed === false);
      const outcome = dryRun ? 'dry run, nothing changed'
        : failed ? 'failed' + (r.sqlstate ? ' (SQLSTATE ' + r.sqlstate + ')' : '')
          : 'implemented';
      recResult(box, !failed,
        el('div', { text: dryRun ? 'Dry run — this would run:' : (failed ? 'Failed: ' : 'Implemented: ') + (r.status ? 'recommendation is now ' + r.status : outcome) }),
        stmt ? el('pre', { class: 'sql', text: stmt }) : null,
        r.error ? el('div', { text: r.error }) : null,
        el('div', { class: 'muted', dataset: { role: 'outcome' }, text: 'Outcome: ' + outcome }));
    } catch (err) {
      recResult(box, false, el('div', { text: describe(err) }));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function recItem(r) {
    const box = el('div', { class: 'result', hidden: true, dataset: { role: 'result' } });
    const preview = el('button', { type: 'button', class: 'btn btn-small', text: 'Preview (dry run)' });
    const impl = el('button', { type: 'button', class: 'btn btn-small btn-primary', text: 'Implement…' });
    const confirm = el('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Confirm implement', hidden: true });
    const all = [preview, impl, confirm];
    preview.addEventListener('click', () => implement(r, true, box, all));
    impl.addEventListener('click', () => { confirm.hidden = false; impl.hidden = true; });
    confirm.addEventListener('click', async () => {
      await implement(r, false, box, all);
      confirm.hidden = true; impl.hidden = false;
    });
    return el('div', { class: 'item', dataset: { recId: r.id } },
      el('div', { class: 'item-head' },
        el('span', { class: 'pill info', text: r.kind }),
        el('span', { class: 'item-title', text: r.title }),
        el('span', { class: 'muted', text: 'confidence ' + pct(r.confidence) })),
      el('div', { class: 'item-body', text: r.rationale }),
      r.statement ? el('pre', { class: 'sql', text: r.statement }) : null,
      el('div', { class: 'item-meta', text: 'database ' + r.database + ' · ' + when(r.created_at) }),
      el('div', { class: 'item-actions' }, all),
      box);
  }

  function renderRecommendations(recs) {
    $('recs-count').textContent = recs.total;
    replace('recommendations', recs.items.length ? recs.items.map(recItem) : el('p', { class: 'empty-note', text: 'No open recommendation.' }),
      recs.total > recs.items.length ? more(recs, 'open recommendations', '/recommendations?status=open') : null);
  }

  function more(list, what, path) {
    return el('p', { class: 'item-meta', text: 'Showing the newest ' + list.items.length + ' of ' + list.total + ' ' + what + ' (all: GET ' + API + path + ').' });
  }

  function renderSlow(slow) {
    $('slow-source').textContent = slow.source === 'live' ? 'live (not yet stored)' : 'latest ' + slow.items.length + ' of ' + slow.total;
    if (!slow.items.length) {
      replace('slow-queries', el('p', { class: 'empty-note', text: 'No slow query recorded.' }));
      return;
    }
    const rows = slow.items.map((q) => {
      const tr = el('tr', { class: 'clickable' + (selectedSlow === q.id ? ' selected' : ''), tabindex: 0, dataset: { logId: q.id } },
        el('td', { text: when(q.logged_at) }),
        el('td', { class: 'num', text: msFmt(q.duration_ms) }),
        el('td', { text: q.database }),
        el('td', { class: 'query-cell', title: q.query, text: q.query }),
        el('td', { class: 'muted', text: q.plan_summary || (q.plan ? 'plan' : '—') }));
      const open = () => {
        selectedSlow = q.id;
        for (const r of $('slow-queries').querySelectorAll('tr.selected')) r.classList.remove('selected');
        tr.classList.add('selected');
        showPlan(q);
      };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
      return tr;
    });
    replace('slow-queries', table(['started', 'duration', 'database', 'query', 'plan'], rows, [0, 1, 0, 0, 0]));
    const still = slow.items.find((q) => q.id === selectedSlow);
    if (still) showPlan(still);
  }

  // ---------------------------------------------------------------- plan viewer

  const NODE_SKIP = new Set(['Plans', 'Node Type', 'Relation Name', 'Alias', 'Startup Cost', 'Total Cost', 'Plan Rows', 'Actual Total Time', 'Actual Rows']);

  function valueText(v) {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function planNode(node, depth) {
    const summary = el('summary', {},
      el('span', { class: 'node', text: node['Node Type'] || 'Node' }),
      node['Relation Name'] ? el('span', { class: 'rel', text: ' on ' + node['Relation Name'] + (node.Alias && node.Alias !== node['Relation Name'] ? ' ' + node.Alias : '') }) : null,
      el('span', { class: 'cost', text: [
        node['Total Cost'] !== undefined ? 'cost ' + node['Startup Cost'] + '..' + node['Total Cost'] : null,
        node['Plan Rows'] !== undefined ? 'rows ' + node['Plan Rows'] : null,
        node['Actual Total Time'] !== undefined ? 'actual ' + node['Actual Total Time'] + ' ms × ' + (node['Actual Loops'] || 1) : null,
      ].filter(Boolean).join(' · ') }));
    const props = Object.entries(node).filter(([k]) => !NODE_SKIP.has(k));
    const d = el('details', { open: depth < 4 }, summary,
      props.length ? el('dl', {}, props.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: valueText(v) })])) : null);
    for (const child of node.Plans || []) d.append(planNode(child, depth + 1));
    return d;
  }

  function jsonTree(label, v, depth) {
    if (v === null || typeof v !== 'object') return el('div', {}, el('span', { class: 'muted', text: label + ': ' }), el('span', { class: 'mono', text: valueText(v) }));
    const d = el('details', { open: depth < 2 }, el('summary', { text: label + (Array.isArray(v) ? ' [' + v.length + ']' : '') }));
    for (const [k, x] of Object.entries(v)) d.append(jsonTree(k, x, depth + 1));
    return d;
  }

  function planTree(plan) {
    // EXPLAIN (FORMAT JSON) is [{"Plan": {...}, "Planning Time": ...}].
    const top = Array.isArray(plan) ? plan[0] : plan;
    if (top && top.Plan && typeof top.Plan === 'object') {
      const extra = Object.entries(top).filter(([k]) => k !== 'Plan');
      return el('div', { class: 'plan-tree' }, planNode(top.Plan, 0),
        extra.length ? el('dl', {}, extra.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: valueText(v) })])) : null);
    }
    return el('div', { class: 'plan-tree' }, jsonTree('plan', plan, 0));
  }

  function showPlan(q) {
    const v = $('plan-viewer');
    const close = el('button', { type: 'button', class: 'btn btn-small', text: 'Close' });
    close.addEventListener('click', () => { v.hidden = true; selectedSlow = null; });
    v.replaceChildren(
      el('div', { class: 'plan-head' },
        el('h3', { text: 'Statement ' + q.fingerprint + ' · ' + msFmt(q.duration_ms) + ' · ' + num(q.rows) + ' rows' }), close),
      el('div', { class: 'subhead', text: 'Normalized query' }),
      el('pre', { class: 'sql', id: 'plan-query', text: q.query }),
      el('div', { class: 'subhead', text: 'Plan' + (q.plan_summary ? ' — ' + q.plan_summary : '') }),
      q.plan ? planTree(q.plan) : el('p', { class: 'empty-note', text: q.plan_summary || 'No plan was captured for this statement.' }));
    v.hidden = false;
  }

  // ---------------------------------------------------------------- reports, baselines

  let reportUrl = null;
  async function openReport(r, btn) {
    btn.disabled = true;
    try {
      const resp = await api('/reports/' + encodeURIComponent(r.id) + '?format=html', { raw: true });
      const blob = new Blob([await resp.text()], { type: 'text/html' });
      if (reportUrl) URL.revokeObjectURL(reportUrl);
      reportUrl = URL.createObjectURL(blob);
      $('report-title').textContent = r.title;
      $('report-newtab').href = reportUrl;
      $('report-modal').hidden = false;
      // A fresh frame per report: reusing one navigated while hidden can
      // leave the new document unpainted. No scripts, an opaque origin.
      const frame = el('iframe', { id: 'report-frame', title: 'Report', sandbox: '' });
      $('report-frame').replaceWith(frame);
      frame.src = reportUrl;
    } catch (err) {
      banner(describe(err));
    } finally {
      btn.disabled = false;
    }
  }

  function renderReports(reports) {
    if (!reports.items.length) { replace('reports', el('p', { class: 'empty-note', text: 'No report yet.' })); return; }
    replace('reports', table(['title', 'window', 'trigger', ''], reports.items.map((r) => {
      const btn = el('button', { type: 'button', class: 'btn btn-small', text: 'Open', dataset: { reportId: r.id } });
      btn.addEventListener('click', () => openReport(r, btn));
      return el('tr', {},
        el('td', { text: r.title }),
        el('td', { class: 'muted', text: when(r.window_start) + ' → ' + when(r.window_end) }),
        el('td', { text: r.trigger }),
        el('td', { class: 'num' }, btn));
    })));
  }

  function renderBaselines(b) {
    if (!b.items.length) { replace('baselines', el('p', { class: 'empty-note', text: 'No baseline yet.' })); return; }
    replace('baselines', table(['name', 'window', 'kind', 'statements'], b.items.map((x) => el('tr', {},
      el('td', { class: 'mono', text: x.name }),
      el('td', { class: 'muted', text: when(x.window_start) + ' → ' + when(x.window_end) }),
      el('td', { text: x.rolling ? 'rolling' : 'fixed' }),
      el('td', { class: 'num', text: x.fingerprints === null ? '–' : num(x.fingerprints) }))), [0, 0, 0, 1]));
  }

  // ---------------------------------------------------------------- start

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const v = $('api-key').value.trim();
      if (v) signIn(v);
    });
    $('logout').addEventListener('click', () => showLogin('Signed out.'));
    $('report-close').addEventListener('click', () => { $('report-modal').hidden = true; });
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape') $('report-modal').hidden = true; });
    if (key) signIn(key); else showLogin();
  });
})();
