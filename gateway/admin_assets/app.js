// smtpgate admin report page (GET /). Plain JS, no build step, no framework: it reads the admin
// JSON API (/api/v1/report, /messages, /clients, /tenants, /audit) with the bearer token and
// draws the messages per day as stacked SVG bars, one fixed colour per TLS version.
// Every client-supplied string (EHLO, sender, AUTH user, ...) goes into the DOM as text only.
'use strict';

(() => {
  const VERSIONS = ['none', '1.0', '1.1', '1.2', '1.3'];
  const LABELS = { none: 'no TLS', '1.0': 'TLS 1.0', '1.1': 'TLS 1.1', '1.2': 'TLS 1.2', '1.3': 'TLS 1.3' };
  const TOKEN_KEY = 'smtpgate.adminToken';
  const PAGE_SIZE = { messages: 50, clients: 25 };
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    token: null,
    filters: { tenant: '', endpoint: '', range: '30d', since: '', until: '', tls: [...VERSIONS] },
    report: null,
    selection: { version: null, date: null },  // drill-down: one version and/or one day
    offsets: { messages: 0, clients: 0 },
    generation: 0,  // drops the answers of superseded requests: whole page ...
    listGen: 0,     // ... and the drill-down lists
  };

  const $ = (id) => document.getElementById(id);

  // h('td', {class: 'x', dataset: {testid: 'y'}}, 'text', otherNode)
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v);
    }
    for (const c of children) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  function setStatus(text, kind) {
    const s = $('status');
    s.textContent = text;
    s.dataset.kind = kind || 'info';
  }

  const num = (n) => Number(n || 0).toLocaleString('en-US');
  const pct = (p) => (Math.round(Number(p || 0) * 10) / 10).toFixed(1) + '%';
  const versionClass = (v) => 'v-' + (v === 'none' ? 'none' : v.replace('.', ''));
  // "2026-11-27T10:04:05.123Z" -> "2026-11-27 10:04:05" (UTC, as the column headers say).
  const fmtTime = (t) => (t ? String(t).replace('T', ' ').replace(/(\.\d+)?Z$/, '') : '');
  const utcToday = () => new Date().toISOString().slice(0, 10);
  function addDays(date, n) {
    const d = new Date(date + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  // ---- token ---------------------------------------------------------------------------------

  function takeTokenFromFragment() {
    const frag = new URLSearchParams(location.hash.replace(/^#/, ''));
    const t = frag.get('token');
    if (t) {
      sessionStorage.setItem(TOKEN_KEY, t);
      frag.delete('token');
      const rest = frag.toString();
      // Out of the address bar (and the history) as soon as it is read.
      history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
    }
    state.token = sessionStorage.getItem(TOKEN_KEY);
  }

  function showTokenForm(message) {
    $('main').hidden = true;
    $('token-panel').hidden = false;
    if (message) $('token-message').textContent = message;
    document.body.dataset.state = 'token';
    setStatus('Admin token required.', 'error');
    $('token-input').focus();
  }

  class Unauthorized extends Error {}

  async function api(path, params, { raw = false } = {}) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== '' && v !== null && v !== undefined) qs.set(k, String(v));
    }
    const url = path + (qs.toString() ? '?' + qs : '');
    const res = await fetch(url, {
      headers: state.token ? { Authorization: 'Bearer ' + state.token } : {},
      cache: 'no-store',
    });
    if (res.status === 401) throw new Unauthorized('401');
    if (!res.ok) {
      let msg = res.status + ' ' + res.statusText;
      try { msg = (await res.json()).error || msg; } catch (_) { /* not JSON */ }
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return raw ? res : res.json();
  }

  // ---- filters -------------------------------------------------------------------------------

  function readFilters() {
    const f = state.filters;
    f.tenant = $('f-tenant').value;
    f.endpoint = $('f-endpoint').value;
    f.range = $('f-range').value;
    f.since = $('f-since').value;
    f.until = $('f-until').value;
    f.tls = [...document.querySelectorAll('#filters input[name=tls]:checked')].map((i) => i.value);
  }

  // The range as the API wants it, and the first/last day the chart shows.
  function rangeParams() {
    const f = state.filters;
    const p = {};
    if (f.range === 'custom') {
      if (f.since) p.since = f.since;
      if (f.until) p.until = f.until;
    } else {
      p.since = f.range;
    }
    return p;
  }

  function chartDays() {
    const f = state.filters;
    let first, last = utcToday();
    if (f.range === 'custom') {
      first = f.since || null;
      if (f.until) last = f.until;
    } else {
      first = addDays(last, -(parseInt(f.range, 10) - 1));
    }
    const dataDays = (state.report?.days || []).map((d) => d.date).sort();
    if (!first) first = dataDays[0] || last;
    if (dataDays.length) {
      if (dataDays[0] < first) first = dataDays[0];
      if (dataDays[dataDays.length - 1] > last) last = dataDays[dataDays.length - 1];
    }
    const days = [];
    for (let d = first; d <= last && days.length < 400; d = addDays(d, 1)) days.push(d);
    return days.length < 400 ? days : dataDays;
  }

  function baseParams() {
    const f = state.filters;
    const p = { ...rangeParams(), tenant: f.tenant, endpoint: f.endpoint };
    if (f.tls.length && f.tls.length < VERSIONS.length) p.tls = f.tls.join(',');
    return p;
  }

  // Filters plus the drill-down selection, for the message and client lists.
  function drillParams() {
    const p = baseParams();
    if (state.selection.version) p.tls = state.selection.version;
    if (state.selection.date) p.date = state.selection.date;
    return p;
  }

  function syncUrl() {
    const f = state.filters;
    const q = new URLSearchParams();
    if (f.tenant) q.set('tenant', f.tenant);
    if (f.endpoint) q.set('endpoint', f.endpoint);
    if (f.range !== '30d') q.set('range', f.range);
    if (f.range === 'custom' && f.since) q.set('since', f.since);
    if (f.range === 'custom' && f.until) q.set('until', f.until);
    if (f.tls.length < VERSIONS.length) q.set('tls', f.tls.join(','));
    if (state.selection.version) q.set('version', state.selection.version);
    if (state.selection.date) q.set('date', state.selection.date);
    const s = q.toString();
    history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
  }

  function loadFiltersFromUrl() {
    const q = new URLSearchParams(location.search);
    if (q.has('tenant')) {
      // The option appears once the tenants are loaded; keep the value until then.
      $('f-tenant').append(h('option', { value: q.get('tenant') }, q.get('tenant')));
      $('f-tenant').value = q.get('tenant');
    }
    if (q.has('endpoint')) $('f-endpoint').value = q.get('endpoint');
    if (q.has('range')) $('f-range').value = q.get('range');
    if (q.has('since')) $('f-since').value = q.get('since');
    if (q.has('until')) $('f-until').value = q.get('until');
    if (q.has('tls')) {
      const wanted = q.get('tls').split(',');
      for (const i of document.querySelectorAll('#filters input[name=tls]')) i.checked = wanted.includes(i.value);
    }
    if (VERSIONS.includes(q.get('version'))) state.selection.version = q.get('version');
    if (/^\d{4}-\d{2}-\d{2}$/.test(q.get('date') || '')) state.selection.date = q.get('date');
    updateRangeInputs();
  }

  function updateRangeInputs() {
    const custom = $('f-range').value === 'custom';
    $('f-since').disabled = !custom;
    $('f-until').disabled = !custom;
    if (!custom) {
      const n = parseInt($('f-range').value, 10);
      $('f-until').value = utcToday();
      $('f-since').value = addDays(utcToday(), -(n - 1));
    }
  }

  // ---- loading -------------------------------------------------------------------------------

  async function guarded(fn) {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof Unauthorized) {
        showTokenForm(state.token ? 'The token was not accepted. Enter the admin token.' : null);
      } else {
        setStatus('Error: ' + e.message, 'error');
        document.body.dataset.state = 'error';
      }
      return undefined;
    }
  }

  async function loadAll() {
    const gen = ++state.generation;
    document.body.dataset.state = 'loading';
    $('chart').dataset.ready = 'false';
    setStatus('Loading…');
    await guarded(async () => {
      const report = await api('/api/v1/report', { ...baseParams(), by: 'day', format: 'json' });
      if (gen !== state.generation) return;
      $('token-panel').hidden = true;
      $('main').hidden = false;
      state.report = report;
      renderTotals();
      renderChart();
      renderDaysTable();
      $('drill').dataset.loaded = '';
      const lgen = ++state.listGen;
      await Promise.all([loadMessages(lgen), loadClients(lgen), loadAudit(gen)]);
      if (gen !== state.generation) return;
      if (lgen === state.listGen) markListsLoaded();
      const all = report.totals?.all || 0;
      setStatus(num(all) + ' accepted messages in the period. Updated ' + new Date().toLocaleTimeString() + '.');
      document.body.dataset.state = 'ready';
    });
  }

  async function loadTenants() {
    await guarded(async () => {
      const data = await api('/api/v1/tenants');
      const sel = $('f-tenant');
      const current = sel.value;
      sel.replaceChildren(h('option', { value: '' }, 'All tenants'));
      const ids = (data.tenants || []).map((t) => t.id);
      if (current && !ids.includes(current)) ids.push(current);
      for (const id of ids) sel.append(h('option', { value: id }, id));
      sel.value = current;
    });
  }

  async function loadMessages(gen = state.listGen) {
    const data = await api('/api/v1/messages', {
      ...drillParams(), limit: PAGE_SIZE.messages, offset: state.offsets.messages, format: 'json',
    });
    if (gen !== state.listGen) return;
    renderMessages(data);
  }

  async function loadClients(gen = state.listGen) {
    const data = await api('/api/v1/clients', {
      ...drillParams(), limit: PAGE_SIZE.clients, offset: state.offsets.clients, format: 'json',
    });
    if (gen !== state.listGen) return;
    renderClients(data);
  }

  async function loadAudit(gen = state.generation) {
    const tbody = $('audit-table').tBodies[0];
    $('audit-scope').textContent = state.filters.tenant ? 'tenant ' + state.filters.tenant + ', latest 50' : 'all tenants, latest 50';
    let data;
    try {
      data = await api('/api/v1/audit', { tenant: state.filters.tenant, limit: 50 });
    } catch (e) {
      if (e instanceof Unauthorized) throw e;
      if (gen !== state.generation) return;
      tbody.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'Audit trail unavailable: ' + e.message)));
      return;
    }
    if (gen !== state.generation) return;
    renderAudit(data.audit || []);
  }

  // Reload only the drill-down lists (selection or paging changed).
  async function reloadLists(which) {
    const gen = ++state.listGen;
    syncUrl();
    renderSelection();
    $('drill').dataset.loaded = '';
    await guarded(async () => {
      if (!which || which === 'messages') await loadMessages(gen);
      if (!which || which === 'clients') await loadClients(gen);
      if (gen === state.listGen) markListsLoaded();
    });
  }

  // "VERSION|DATE" of the selection the lists show, once they show it (for tests and tools).
  function markListsLoaded() {
    $('drill').dataset.loaded = (state.selection.version || '') + '|' + (state.selection.date || '');
  }

  // ---- totals --------------------------------------------------------------------------------

  function renderTotals() {
    const t = state.report.totals || {};
    const percent = t.percent || {};
    const ul = $('totals');
    ul.replaceChildren();
    for (const v of VERSIONS) {
      ul.append(h('li', { class: 'total ' + versionClass(v), dataset: { version: v } },
        h('span', { class: 'swatch', 'aria-hidden': 'true' }),
        h('span', { class: 'label' }, LABELS[v]),
        h('span', { class: 'value', id: 'total-' + versionClass(v), dataset: { testid: 'total-' + v } }, num(t[v])),
        h('span', { class: 'percent', id: 'percent-' + versionClass(v), dataset: { testid: 'percent-' + v } }, pct(percent[v]))));
    }
    ul.append(h('li', { class: 'total all' },
      h('span', { class: 'label' }, 'All'),
      h('span', { class: 'value', id: 'total-all', dataset: { testid: 'total-all' } }, num(t.all)),
      h('span', { class: 'percent' }, '100%')));
    const decisions = Object.entries(t.decisions || {});
    $('decisions').textContent = decisions.length
      ? 'Refused sessions by rule: ' + decisions.map(([r, n]) => r + ' ' + num(n)).join(', ')
      : 'No refused sessions in the period.';
  }

  // ---- chart ---------------------------------------------------------------------------------

  function niceMax(v) {
    if (v <= 5) return 5;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function renderLegend() {
    const legend = $('legend');
    legend.replaceChildren();
    for (const v of VERSIONS) {
      // Pressed: this version over the whole period (a bar segment selects a version and a day).
      const active = state.selection.version === v && !state.selection.date;
      legend.append(h('button', {
        type: 'button', class: 'legend-item ' + versionClass(v), 'aria-pressed': active ? 'true' : 'false',
        dataset: { testid: 'legend-' + v, version: v },
        title: active ? 'Show every version' : 'List the ' + LABELS[v] + ' messages and clients',
        onclick: () => selectVersion(active ? null : v, null),
      }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), LABELS[v]));
    }
  }

  function renderChart() {
    renderLegend();
    const box = $('chart');
    const byDate = new Map((state.report.days || []).map((d) => [d.date, d]));
    const days = chartDays();
    const shown = VERSIONS.filter((v) => state.filters.tls.includes(v));
    const maxAll = Math.max(0, ...days.map((d) => byDate.get(d)?.all || 0));
    const yMax = niceMax(maxAll);
    const width = Math.max(320, box.clientWidth || 800);
    const height = 280;
    const m = { top: 12, right: 12, bottom: 40, left: 48 };
    const iw = width - m.left - m.right;
    const ih = height - m.top - m.bottom;
    const step = iw / Math.max(1, days.length);
    const barW = Math.max(2, Math.min(48, step * 0.72));
    const y = (n) => m.top + ih - (n / yMax) * ih;

    const root = svg('svg', {
      width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
      'aria-label': 'Stacked bars: accepted messages per day by TLS version. The table below holds the same numbers.',
    });
    // Grid and y axis.
    for (let i = 0; i <= 5; i++) {
      const val = (yMax / 5) * i;
      const yy = y(val);
      root.append(svg('line', { x1: m.left, x2: width - m.right, y1: yy, y2: yy, class: 'grid' }));
      root.append(svg('text', { x: m.left - 6, y: yy + 4, class: 'tick', 'text-anchor': 'end' },
        Number.isInteger(val) ? num(val) : val.toFixed(1)));
    }
    // x labels: about eight of them.
    const every = Math.max(1, Math.ceil(days.length / 8));
    days.forEach((d, i) => {
      const cx = m.left + step * i + step / 2;
      // Every `every`th day, counted back from the last day (which is always labelled).
      if ((days.length - 1 - i) % every === 0) {
        root.append(svg('text', { x: cx, y: height - m.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, d.slice(5)));
      }
      const row = byDate.get(d);
      if (!row) return;
      const g = svg('g', { class: 'bar', dataset: { date: d, testid: 'bar-' + d } });
      let acc = 0;
      for (const v of shown) {
        const n = row[v] || 0;
        if (!n) continue;
        const y0 = y(acc + n), y1 = y(acc);
        acc += n;
        const selected = (!state.selection.version || state.selection.version === v) &&
          (!state.selection.date || state.selection.date === d);
        const rect = svg('rect', {
          x: cx - barW / 2, y: y0, width: barW, height: Math.max(1, y1 - y0),
          class: 'segment ' + versionClass(v) + (selected ? '' : ' dim'),
          dataset: { testid: 'segment-' + d + '-' + v, version: v, date: d, count: String(n) },
          onclick: () => selectVersion(v, d),
        }, svg('title', {}, `${d} ${LABELS[v]}: ${num(n)} (${pct(row.percent?.[v])})`));
        g.append(rect);
      }
      root.append(g);
    });
    root.append(svg('line', { x1: m.left, x2: width - m.right, y1: y(0), y2: y(0), class: 'axis' }));
    if (!maxAll) {
      root.append(svg('text', { x: m.left + iw / 2, y: m.top + ih / 2, class: 'empty-note', 'text-anchor': 'middle' },
        'No accepted messages in this period'));
    }
    box.replaceChildren(root);
    box.dataset.days = String(days.length);
    box.dataset.segments = String(root.querySelectorAll('rect.segment').length);
    box.dataset.ready = 'true';
  }

  function renderDaysTable() {
    const table = $('days-table');
    const cols = ['date', ...VERSIONS, 'all'];
    table.tHead.replaceChildren(h('tr', {}, cols.map((c) => h('th', { scope: 'col', class: VERSIONS.includes(c) ? versionClass(c) : null },
      VERSIONS.includes(c) ? h('button', {
        type: 'button', class: 'linklike', dataset: { testid: 'column-' + c }, onclick: () => selectVersion(c, null),
        'aria-label': 'List the ' + LABELS[c] + ' messages and clients',
      }, c) : c))));
    const rows = [...(state.report.days || [])].sort((a, b) => (a.date < b.date ? 1 : -1));
    const cell = (d, v) => {
      const n = d[v] || 0;
      if (!n) return h('td', { class: 'num' }, '0');
      return h('td', { class: 'num' }, h('button', {
        type: 'button', class: 'linklike', dataset: { testid: 'cell-' + d.date + '-' + v },
        'aria-label': `${num(n)} ${LABELS[v]} messages on ${d.date}: list them`,
        onclick: () => selectVersion(v, d.date),
      }, num(n)), h('span', { class: 'cellpct' }, ' ' + pct(d.percent?.[v])));
    };
    table.tBodies[0].replaceChildren(...(rows.length ? rows.map((d) => h('tr', { dataset: { date: d.date } },
      h('th', { scope: 'row' }, h('button', {
        type: 'button', class: 'linklike', onclick: () => selectVersion(null, d.date),
        'aria-label': 'List the messages of ' + d.date,
      }, d.date)),
      VERSIONS.map((v) => cell(d, v)), h('td', { class: 'num strong' }, num(d.all)))) :
      [h('tr', {}, h('td', { colspan: cols.length, class: 'empty' }, 'No accepted messages in this period.'))]));
    const t = state.report.totals || {};
    table.tFoot.replaceChildren(h('tr', {}, h('th', { scope: 'row' }, 'Total'),
      VERSIONS.map((v) => h('td', { class: 'num' }, num(t[v]), h('span', { class: 'cellpct' }, ' ' + pct(t.percent?.[v])))),
      h('td', { class: 'num strong' }, num(t.all))));
  }

  // ---- drill-down ----------------------------------------------------------------------------

  function selectVersion(version, date) {
    state.selection = { version, date };
    state.offsets = { messages: 0, clients: 0 };
    renderChart();
    reloadLists().then(() => $('drill-heading').focus({ preventScroll: false }));
  }

  function renderSelection() {
    const { version, date } = state.selection;
    let text = 'Messages and clients';
    if (version || date) {
      text = (version ? LABELS[version] : 'All versions') + (date ? ' on ' + date : ', whole period');
    }
    $('drill-heading').textContent = text;
    $('drill-heading').dataset.version = version || '';
    $('drill-heading').dataset.date = date || '';
    $('clear-selection').hidden = !(version || date);
  }

  const td = (v, cls) => h('td', { class: cls || null }, v === null || v === undefined || v === '' ? '—' : String(v));

  function renderMessages(data) {
    $('messages-total').textContent = num(data.total);
    $('messages-total').dataset.value = String(data.total || 0);
    const rows = data.messages || [];
    $('messages-table').tBodies[0].replaceChildren(...(rows.length ? rows.map((m) => h('tr', {
      dataset: { testid: 'message-row', id: String(m.id ?? ''), tls: m.tls_version || 'none' },
    },
      h('td', { title: m.time || null }, fmtTime(m.time)),
      h('td', { dataset: { col: 'tls_version' } }, h('span', { class: 'badge ' + versionClass(m.tls_version || 'none') }, m.tls_version || 'none')),
      td(m.tls_cipher, 'mono wrap'), td(m.client_ip, 'mono'), td(m.ehlo), td(m.auth_user), td(m.tenant), td(m.endpoint),
      td(m.sender), td(m.rcpt_count, 'num'), td(m.size != null ? num(m.size) : null, 'num'), td(m.rule), td(m.queue_id, 'mono'))) :
      [h('tr', {}, h('td', { colspan: 13, class: 'empty' }, 'No messages.'))]));
    renderPager('messages', data);
  }

  function renderClients(data) {
    $('clients-total').textContent = num(data.total ?? (data.clients || []).length);
    $('clients-total').dataset.value = String(data.total ?? (data.clients || []).length);
    const rows = data.clients || [];
    $('clients-table').tBodies[0].replaceChildren(...(rows.length ? rows.map((c) => h('tr', {
      dataset: { testid: 'client-row', ip: c.client_ip || '' },
    },
      td(c.client_ip, 'mono'), td(c.ehlo), td(c.auth_user), td(c.tenant), td(c.endpoint),
      h('td', {}, VERSIONS.filter((v) => c.versions?.[v]).map((v) =>
        h('span', { class: 'badge ' + versionClass(v), title: `${c.versions[v]} sessions over ${LABELS[v]}` }, `${v} × ${num(c.versions[v])}`))),
      td(num(c.messages), 'num'), td(fmtTime(c.first_seen)),
      td(fmtTime(c.last_seen)), td(c.last_rule))) :
      [h('tr', {}, h('td', { colspan: 10, class: 'empty' }, 'No clients.'))]));
    renderPager('clients', data);
  }

  function renderPager(which, data) {
    const nav = $(which + '-pager');
    const total = Number(data.total ?? 0);
    const limit = Number(data.limit || PAGE_SIZE[which]);
    const offset = Number(data.offset ?? state.offsets[which]);
    const shown = (data[which] || []).length;
    nav.replaceChildren();
    if (!total) return;
    const go = (o) => { state.offsets[which] = Math.max(0, o); reloadLists(which); };
    nav.append(
      h('button', { type: 'button', class: 'secondary', disabled: offset <= 0, onclick: () => go(offset - limit),
        dataset: { testid: which + '-prev' } }, '← Previous'),
      h('span', { class: 'range', dataset: { testid: which + '-range' } },
        `${num(offset + 1)}–${num(offset + shown)} of ${num(total)}`),
      h('button', { type: 'button', class: 'secondary', disabled: offset + shown >= total, onclick: () => go(offset + limit),
        dataset: { testid: which + '-next' } }, 'Next →'));
  }

  // ---- audit ---------------------------------------------------------------------------------

  const show = (v) => (v === undefined ? '∅' : typeof v === 'string' ? v : JSON.stringify(v));

  // old → new, key by key when both are objects (only the keys that changed).
  function changeCell(oldV, newV) {
    const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);
    const cell = h('td', { class: 'change' });
    if (isObj(oldV) && isObj(newV)) {
      const keys = [...new Set([...Object.keys(oldV), ...Object.keys(newV)])]
        .filter((k) => JSON.stringify(oldV[k]) !== JSON.stringify(newV[k]));
      if (!keys.length) cell.append('no change');
      for (const k of keys) {
        cell.append(h('div', {}, h('span', { class: 'key' }, k + ': '), h('del', {}, show(oldV[k])), ' → ', h('ins', {}, show(newV[k]))));
      }
      return cell;
    }
    if (oldV === null || oldV === undefined) cell.append(h('ins', {}, show(newV)));
    else if (newV === null || newV === undefined) cell.append(h('del', {}, show(oldV)));
    else cell.append(h('del', {}, show(oldV)), ' → ', h('ins', {}, show(newV)));
    return cell;
  }

  function renderAudit(entries) {
    $('audit-table').tBodies[0].replaceChildren(...(entries.length ? entries.map((a) => h('tr', { dataset: { testid: 'audit-row' } },
      td(fmtTime(a.time)), td(a.actor), td(a.tenant), td(a.action), changeCell(a.old, a.new))) :
      [h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No tenant changes recorded.'))]));
  }

  // ---- CSV export ----------------------------------------------------------------------------

  async function exportCsv(kind) {
    const paths = { report: '/api/v1/report', messages: '/api/v1/messages', clients: '/api/v1/clients' };
    // Without limit/offset: a CSV export holds every row of the selection, not one page.
    const params = kind === 'report' ? { ...baseParams(), by: 'day' } : drillParams();
    params.format = 'csv';
    await guarded(async () => {
      setStatus('Exporting ' + kind + '…');
      const res = await api(paths[kind], params, { raw: true });
      const blob = new Blob([await res.text()], { type: 'text/csv' });
      const sel = state.selection;
      const name = ['smtpgate', kind, state.filters.tenant, state.filters.endpoint,
        kind !== 'report' && sel.version ? 'tls' + sel.version : '', kind !== 'report' ? sel.date : '', utcToday()]
        .filter(Boolean).join('-') + '.csv';
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      setStatus('Exported ' + name + '.');
    });
  }

  // ---- wiring --------------------------------------------------------------------------------

  function init() {
    takeTokenFromFragment();
    loadFiltersFromUrl();
    readFilters();
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token-input').value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      state.token = t;
      $('token-input').value = '';
      $('token-panel').hidden = true;
      loadTenants();
      loadAll();
    });
    $('f-range').addEventListener('change', () => { updateRangeInputs(); if ($('f-range').value !== 'custom') apply(); });
    for (const id of ['f-tenant', 'f-endpoint', 'f-since', 'f-until']) $(id).addEventListener('change', apply);
    for (const i of document.querySelectorAll('#filters input[name=tls]')) i.addEventListener('change', apply);
    $('filters').addEventListener('submit', (e) => { e.preventDefault(); apply(); });
    $('export-report').addEventListener('click', () => exportCsv('report'));
    $('export-messages').addEventListener('click', () => exportCsv('messages'));
    $('export-clients').addEventListener('click', () => exportCsv('clients'));
    $('clear-selection').addEventListener('click', () => selectVersion(null, null));
    // A #token=... pasted into the address bar of an open page.
    window.addEventListener('hashchange', () => {
      if (!new URLSearchParams(location.hash.replace(/^#/, '')).has('token')) return;
      takeTokenFromFragment();
      $('token-panel').hidden = true;
      loadTenants();
      loadAll();
    });
    let resizeTimer = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => state.report && renderChart(), 150);
    });
    renderSelection();
    if (!state.token) {
      showTokenForm(null);
      return;
    }
    loadTenants();
    loadAll();
  }

  function apply() {
    readFilters();
    state.offsets = { messages: 0, clients: 0 };
    // A version the filters now hide cannot stay selected.
    if (state.selection.version && !state.filters.tls.includes(state.selection.version)) state.selection.version = null;
    syncUrl();
    renderSelection();
    loadAll();
  }

  document.addEventListener('DOMContentLoaded', init);
})();
