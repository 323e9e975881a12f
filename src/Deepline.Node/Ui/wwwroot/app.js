// Deepline dashboard. No framework, no CDN: this file and app.css are all there is.
// Every value that came from a caller (run ids, names, reasons, params) reaches the page as text only
// (textContent, setAttribute of inert attributes), never as markup; the page's CSP forbids inline script.
'use strict';

(() => {
  const KEY = 'deepline.key';
  const STATUSES = ['RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
  const TASK_STATES = ['PENDING', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'SKIPPED'];
  const PAGE = 25;
  const DAG_MAX_TASKS = 400;
  const TASKS_SHOWN = 500;

  const state = { me: null, view: null, stream: null, retry: 1000, refreshTimer: null, pollTimer: null };

  // ---------- DOM helpers: text only ----------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }
  const SVGNS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVGNS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }
  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = String(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function append(el, children) {
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  const $ = (sel) => document.querySelector(sel);

  function fmtTime(t) {
    if (!t) return '—';
    const d = new Date(t);
    if (isNaN(d)) return String(t);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }
  function ago(t) {
    if (!t) return '';
    const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  function badge(st) { return h('span', { class: 'status st-' + (TASK_STATES.includes(st) || STATUSES.includes(st) ? st : 'PENDING'), 'data-status': st, text: st }); }
  function toast(msg) {
    const t = $('#toast');
    t.textContent = msg;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.textContent = ''; }, 6000);
  }
  function errorBox(e) { return h('p', { class: 'error', role: 'alert', text: describe(e) }); }
  function describe(e) {
    if (!e) return 'Unknown error';
    if (e.status === 404) return 'Not found: ' + (e.message || '');
    return (e.status ? e.status + ': ' : '') + (e.message || String(e));
  }

  // ---------- API ----------
  function authHeaders() {
    const key = sessionStorage.getItem(KEY);
    return key ? { Authorization: 'Bearer ' + key } : {};
  }
  async function api(path, opts = {}) {
    const headers = Object.assign({ Accept: 'application/json' }, authHeaders(), opts.json ? { 'Content-Type': 'application/json' } : {});
    const res = await fetch(path, { method: opts.method || 'GET', headers, body: opts.json ? JSON.stringify(opts.json) : undefined, cache: 'no-store', credentials: 'omit' });
    const text = await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch { data = null; } }
    if (!res.ok) {
      const err = new Error((data && (data.detail || data.title)) || res.statusText || String(res.status));
      err.status = res.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  // ---------- sign-in ----------
  async function whoami() {
    try {
      state.me = await api('/auth/whoami');
      return true;
    } catch (e) {
      if (e.status === 401 || e.status === 403) { state.me = null; return false; }
      throw e;
    }
  }
  function renderSignIn(problem) {
    setView('signin');
    const main = clear($('#main'));
    const input = h('input', { id: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, minlength: 16, 'aria-describedby': 'key-help' });
    const form = h('form', { 'aria-labelledby': 'signin-h', onsubmit: async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = '';
      await start();
    } },
    h('label', { for: 'key' }, 'API key'),
    input,
    h('p', { id: 'key-help', class: 'note', text: 'Kept in this tab only (sessionStorage) and sent as Authorization: Bearer. It is never put in a URL.' }),
    h('button', { type: 'submit', text: 'Sign in' }));
    append(main, [h('section', { class: 'signin' }, h('h1', { id: 'signin-h', text: 'Sign in' }), problem ? h('p', { class: 'error', role: 'alert', text: problem }) : null, form)]);
    input.focus();
  }
  function renderWho() {
    const me = state.me;
    const who = $('#who');
    who.textContent = me ? `${me.name} · ${me.role}${me.client_id ? ' · client ' + me.client_id : ''}${me.open ? ' (open node)' : ''}` : '';
    $('#signout').hidden = !sessionStorage.getItem(KEY);
    for (const a of document.querySelectorAll('[data-needs]')) a.hidden = !(me && me.may[a.getAttribute('data-needs')]);
  }
  const may = (what) => !!(state.me && state.me.may && state.me.may[what]);

  // ---------- live events (fetch streaming: EventSource cannot send the key header) ----------
  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
    setLive(false);
  }
  function setLive(on, why) {
    const el = $('#live');
    el.setAttribute('data-state', on ? 'on' : 'off');
    el.textContent = on ? 'Live' : 'Live: ' + (why || 'off');
  }
  async function connectStream() {
    if (!state.me || !may('read_runs')) return;
    const ctrl = new AbortController();
    state.stream = ctrl;
    let wait = state.retry;
    try {
      const res = await fetch('/ui/events', { headers: Object.assign({ Accept: 'text/event-stream' }, authHeaders()), signal: ctrl.signal, cache: 'no-store', credentials: 'omit' });
      if (res.status === 401) { stopStream(); renderSignIn('The key is no longer accepted.'); return; }
      if (!res.ok) {
        setLive(false, res.status === 429 ? 'too many streams' : 'error ' + res.status);
        wait = res.status === 429 ? 15000 : wait;
      } else {
        setLive(true);
        state.retry = 1000;
        // Anything missed while disconnected: read the current view again once.
        if (state.connectedBefore) refresh();
        state.connectedBefore = true;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            onBlock(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
          if (buf.length > 1 << 20) buf = ''; // a broken stream must not grow without bound
        }
      }
    } catch (e) {
      if (ctrl.signal.aborted) return;
    }
    if (state.stream !== ctrl) return;
    setLive(false, 'reconnecting');
    state.retry = Math.min(30000, wait * 2);
    setTimeout(() => { if (state.stream === ctrl) connectStream(); }, wait);
  }
  function onBlock(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trim());
    }
    if (!data.length) return;
    let payload;
    try { payload = JSON.parse(data.join('\n')); } catch { return; }
    if (name === 'run' && state.view && state.view.onRun) state.view.onRun(payload);
    if (name === 'monitor' && state.view && state.view.onMonitor) state.view.onMonitor(payload);
    if (name === 'cancel' && state.view && state.view.onCancel) state.view.onCancel(payload);
  }

  // ---------- routing ----------
  function route() {
    const hash = location.hash || '#/runs';
    const [path, query] = hash.slice(1).split('?');
    const params = new URLSearchParams(query || '');
    const parts = path.split('/').filter(Boolean);
    clearInterval(state.pollTimer);
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.getAttribute('data-nav') === parts[0] || (parts[0] === 'run' && a.getAttribute('data-nav') === 'runs')) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (!may('read_runs')) return noPages();
    if (parts[0] === 'run' && parts[1]) return runPage(decodeURIComponent(parts[1]));
    if (parts[0] === 'stuck') return may('operate') ? stuckPage() : forbidden();
    if (parts[0] === 'cluster') return may('operate') ? clusterPage() : forbidden();
    if (parts[0] === 'pools') return may('operate') ? poolsPage() : forbidden();
    return runsPage(params);
  }
  function setView(name, hooks) {
    state.view = Object.assign({ name }, hooks || {});
  }
  function refresh() { if (state.view && state.view.refresh) state.view.refresh(); }
  function forbidden() {
    setView('forbidden');
    const main = clear($('#main'));
    append(main, [h('h1', { text: 'Not available' }), h('p', { text: 'Your key\'s role does not include this page.' })]);
  }
  function noPages() {
    setView('none');
    const main = clear($('#main'));
    append(main, [h('h1', { text: 'Nothing to show for this key' }),
      h('p', { text: `A ${state.me.role} key reads no runs; the dashboard needs a submitter, operator or admin key.` })]);
  }
  function throttle(fn, ms) {
    let timer = null;
    return () => { if (timer) return; timer = setTimeout(() => { timer = null; fn(); }, ms); };
  }

  // ---------- runs list ----------
  function runsPage(params) {
    const f = {
      status: params.get('status') || '',
      client: state.me && state.me.client_id ? state.me.client_id : (params.get('client') || ''),
      workflow: params.get('workflow') || '',
      page: Math.max(0, parseInt(params.get('page') || '0', 10) || 0),
    };
    const main = clear($('#main'));
    document.title = 'Runs · Deepline';
    const statusSel = h('select', { id: 'f-status', name: 'status' }, h('option', { value: '', text: 'Any status' }), STATUSES.map((st) => h('option', { value: st, selected: st === f.status, text: st })));
    const client = h('input', { id: 'f-client', name: 'client', value: f.client, maxlength: 128, disabled: !!(state.me && state.me.client_id), autocomplete: 'off' });
    const workflow = h('input', { id: 'f-workflow', name: 'workflow', value: f.workflow, maxlength: 256, autocomplete: 'off' });
    const form = h('form', { class: 'bar', role: 'search', 'aria-label': 'Filter runs', onsubmit: (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      if (statusSel.value) q.set('status', statusSel.value);
      if (client.value.trim() && !(state.me && state.me.client_id)) q.set('client', client.value.trim());
      if (workflow.value.trim()) q.set('workflow', workflow.value.trim());
      location.hash = '#/runs' + (q.toString() ? '?' + q : '');
    } },
    h('label', { for: 'f-status' }, 'Status', statusSel),
    h('label', { for: 'f-client' }, 'Client', client),
    h('label', { for: 'f-workflow' }, 'Workflow contains', workflow),
    h('button', { type: 'submit', text: 'Apply filters' }),
    h('button', { type: 'button', class: 'secondary', text: 'Clear', onclick: () => { location.hash = '#/runs'; } }));
    const tbody = h('tbody');
    const table = h('table', { class: 'stack', id: 'runs' },
      h('caption', { text: 'Runs, newest first' }),
      h('thead', {}, h('tr', {}, ['Run', 'Workflow', 'Client', 'Status', 'Tasks', 'Created', 'Updated'].map((c) => h('th', { scope: 'col', text: c })))),
      tbody);
    const info = h('p', { class: 'note', 'aria-live': 'polite' });
    const prev = h('button', { type: 'button', class: 'secondary', text: 'Previous page', onclick: () => go(f.page - 1) });
    const next = h('button', { type: 'button', class: 'secondary', text: 'Next page', onclick: () => go(f.page + 1) });
    const pageLabel = h('span', { text: 'Page ' + (f.page + 1) });
    append(main, [h('h1', { text: 'Runs' }), form, info, h('div', { class: 'table-wrap' }, table), h('div', { class: 'pager' }, prev, pageLabel, next),
      may('cancel') ? bulkSection(f) : null]);
    function go(p) {
      const q = new URLSearchParams(params);
      q.set('page', String(Math.max(0, p)));
      location.hash = '#/runs?' + q;
    }
    const rows = new Map();
    const shown = new Map();
    function rowFor(r) {
      const tr = h('tr', { 'data-run-id': r.run_id });
      fillRow(tr, r);
      return tr;
    }
    function fillRow(tr, r) {
      shown.set(r.run_id, r);
      clear(tr);
      const done = (r.task_counts.succeeded || 0) + (r.task_counts.failed || 0) + (r.task_counts.cancelled || 0) + (r.task_counts.skipped || 0);
      append(tr, [
        h('td', { class: 'id', 'data-label': 'Run' }, h('a', { href: '#/run/' + encodeURIComponent(r.run_id), text: r.run_id })),
        h('td', { 'data-label': 'Workflow', text: r.workflow_name || '—' }),
        h('td', { 'data-label': 'Client', text: r.client_id || '—' }),
        h('td', { 'data-label': 'Status' }, badge(r.status), r.deadlock_reason ? h('span', { class: 'note', text: ' ' + r.deadlock_reason }) : null),
        h('td', { 'data-label': 'Tasks', text: `${done}/${r.task_count} done${r.task_counts.running ? ', ' + r.task_counts.running + ' running' : ''}` }),
        h('td', { 'data-label': 'Created', title: fmtTime(r.created_at), text: fmtTime(r.created_at) }),
        h('td', { 'data-label': 'Updated', title: fmtTime(r.updated_at), text: ago(r.updated_at) }),
      ]);
    }
    async function load() {
      const q = new URLSearchParams({ limit: String(PAGE), offset: String(f.page * PAGE) });
      if (f.status) q.set('status', f.status);
      if (f.client) q.set('client_id', f.client);
      if (f.workflow) q.set('workflow', f.workflow);
      try {
        const data = await api('/runs?' + q);
        clear(tbody);
        rows.clear();
        for (const r of data.runs) { const tr = rowFor(r); rows.set(r.run_id, tr); tbody.appendChild(tr); }
        if (!data.runs.length) tbody.appendChild(h('tr', {}, h('td', { colspan: 7, text: 'No runs match.' })));
        info.textContent = `${data.runs.length} run(s) on this page${data.has_more ? '; more on the next page' : ''}.`;
        prev.disabled = f.page === 0;
        next.disabled = !data.has_more;
      } catch (e) {
        clear(tbody);
        tbody.appendChild(h('tr', {}, h('td', { colspan: 7 }, errorBox(e))));
      }
    }
    const reload = throttle(load, 300);
    setView('runs', {
      refresh: load,
      // The cluster's cancel notice comes before the index has the cancel: show the run as CANCELLING until it does.
      onCancel: (c) => {
        const tr = rows.get(c.run_id);
        const r = shown.get(c.run_id);
        if (!tr || !r || r.status !== 'RUNNING') return;
        fillRow(tr, Object.assign({}, r, { status: 'CANCELLING', cancel_reason: c.reason, cancelled_by: c.cancelled_by, cancelled_at: c.cancelled_at }));
      },
      onRun: (r) => {
        const before = shown.get(r.run_id);
        if (before && before.cancelled_at && !r.cancelled_at) return; // an index row older than the notice already shown
        const tr = rows.get(r.run_id);
        const matches = (!f.status || r.status === f.status) && (!f.client || r.client_id === f.client)
          && (!f.workflow || (r.workflow_name || '').toLowerCase().includes(f.workflow.toLowerCase()));
        if (tr && matches) fillRow(tr, r);
        else if (tr || (matches && f.page === 0)) reload();
      },
    });
    load();
  }

  // POST /runs/cancel: count first (dry run), then cancel as one operation and follow its progress.
  function bulkSection(f) {
    const scoped = !!(state.me && state.me.client_id);
    const client = h('input', { id: 'bulk-client', value: f.client, maxlength: 128, disabled: scoped, autocomplete: 'off' });
    const workflow = h('input', { id: 'bulk-workflow', maxlength: 200, autocomplete: 'off' });
    const before = h('input', { id: 'bulk-before', maxlength: 40, placeholder: '2026-12-07T06:00:00Z', autocomplete: 'off' });
    const reason = h('input', { id: 'bulk-reason', maxlength: 1000, placeholder: 'bulk cancel', autocomplete: 'off' });
    const status = h('p', { id: 'bulk-status', class: 'note', 'aria-live': 'polite' });
    const go = h('button', { type: 'button', id: 'bulk-go', class: 'danger', hidden: true });
    let filter = null;
    function read() {
      const out = {};
      if (!scoped && client.value.trim()) out.client_id = client.value.trim();
      if (workflow.value.trim()) out.workflow_name = workflow.value.trim();
      if (before.value.trim()) out.created_before = before.value.trim();
      return out;
    }
    async function count() {
      go.hidden = true;
      filter = read();
      try {
        const r = await api('/runs/cancel', { method: 'POST', json: { filter, dry_run: true } });
        status.textContent = `${r.matched} RUNNING run(s) match` + (r.sample.length ? `; the first: ${r.sample.join(', ')}` : '.');
        if (r.matched > 0) { go.textContent = `Cancel ${r.matched} run(s)`; go.hidden = false; }
      } catch (e) { status.textContent = describe(e); }
    }
    async function start() {
      go.hidden = true;
      try {
        const body = { filter, reason: reason.value.trim() || undefined };
        if (Object.keys(filter).length === 0) body.confirm = true; // the person saw the count of every run first
        let op = await api('/runs/cancel', { method: 'POST', json: body });
        for (;;) {
          status.textContent = `Operation ${op.operation_id}: ${op.state}, ${op.cancelled} cancelled, ${op.skipped} skipped, ${op.failed} failed of ${op.matched}`;
          if (op.state === 'done') break;
          await new Promise((r) => setTimeout(r, 1000));
          op = await api('/operations/' + encodeURIComponent(op.operation_id));
        }
      } catch (e) { status.textContent = describe(e); }
    }
    go.addEventListener('click', start);
    return h('details', { id: 'bulk' }, h('summary', { text: 'Cancel many runs' }),
      h('form', { class: 'bar', 'aria-label': 'Cancel many runs', onsubmit: (ev) => { ev.preventDefault(); count(); } },
        h('label', { for: 'bulk-client' }, 'Client to cancel', client),
        h('label', { for: 'bulk-workflow' }, 'Workflow to cancel (exact)', workflow),
        h('label', { for: 'bulk-before' }, 'Created before (UTC)', before),
        h('label', { for: 'bulk-reason' }, 'Cancel reason', reason),
        h('button', { type: 'submit', id: 'bulk-count', text: 'Count matching runs' }), go),
      status);
  }

  // ---------- one run ----------
  function runPage(runId) {
    const main = clear($('#main'));
    document.title = 'Run ' + runId + ' · Deepline';
    const body = h('div', {}, h('p', { text: 'Loading…' }));
    append(main, [h('p', {}, h('a', { href: '#/runs', text: '← All runs' })), h('h1', {}, 'Run ', h('span', { class: 'mono', id: 'run-id', text: runId })), body]);
    let lastSeq = null;
    let cancelForm = null;
    let parts = null;
    async function load() {
      try {
        const [run, history] = await Promise.all([
          api('/runs/' + encodeURIComponent(runId)),
          // The first 1000 events: the whole story of all but the largest runs (the CLI pages through the rest).
          api('/runs/' + encodeURIComponent(runId) + '/history?limit=1000').catch(() => null)]);
        render(run, history);
      } catch (e) {
        parts = null;
        cancelForm = null;
        clear(body).appendChild(errorBox(e));
      }
    }
    function render(run, history) {
      // Fixed containers, filled in place: the cancel form is never detached by a live refresh, so what the person
      // is typing and where the keyboard focus is stay put.
      if (!parts) {
        parts = { facts: h('div'), cancel: h('div'), cx: h('div'), dag: h('div'), tasks: h('div'), timeline: h('div'), ignored: h('div') };
        clear(body);
        // The facts and the cancel form side by side (stacked on a narrow screen): the DAG stays in the first screenful.
        append(body, [h('div', { class: 'run-top' }, parts.facts, parts.cancel), parts.cx, parts.dag, parts.tasks, parts.timeline, parts.ignored]);
      }
      const c = run.task_counts;
      clear(parts.facts).appendChild(
        h('dl', { class: 'facts', id: 'run-facts' },
          h('dt', { text: 'Status' }), h('dd', { id: 'run-status' }, badge(run.status)),
          h('dt', { text: 'Workflow' }), h('dd', { text: run.workflow_name || '—' }),
          h('dt', { text: 'Client' }), h('dd', { text: run.client_id || '—' }),
          h('dt', { text: 'Created' }), h('dd', { text: fmtTime(run.created_at) }),
          h('dt', { text: 'Updated' }), h('dd', { text: fmtTime(run.updated_at) + ' (' + ago(run.updated_at) + ')' }),
          h('dt', { text: 'Tasks' }), h('dd', { text: TASK_STATES.filter((st) => c[st.toLowerCase()]).map((st) => `${st} ${c[st.toLowerCase()]}`).join(', ') || String(run.task_count) })));
      if (!(may('cancel') && (run.status === 'RUNNING' || run.status === 'CANCELLING'))) {
        clear(parts.cancel);
        cancelForm = null;
      } else if (!cancelForm) {
        clear(parts.cancel).appendChild(cancelSection(run));
      }
      // Who may cancel a run may re-run it once it FAILED (POST /runs/{id}/retry).
      if (may('cancel') && run.status === 'FAILED') clear(parts.cancel).appendChild(rerunSection());
      clear(parts.cx);
      if (run.cancellation) parts.cx.appendChild(cancellationSection(run.cancellation));
      clear(parts.dag).appendChild(dagSection(run));
      const events = history ? history.events : null;
      clear(parts.tasks).appendChild(tasksSection(run, events ? spans(events) : null, run.resource_waits || []));
      clear(parts.timeline).appendChild(timelineSection(events, history && history.next_after != null));
      clear(parts.ignored).appendChild(ignoredSection(run));
    }
    function cancelSection(run) {
      const reason = h('input', { id: 'cancel-reason', name: 'reason', maxlength: 1000, placeholder: 'user requested cancellation', autocomplete: 'off' });
      const force = h('input', { id: 'cancel-force', type: 'checkbox', name: 'force' });
      const result = h('p', { role: 'status', 'aria-live': 'polite' });
      const btn = h('button', { type: 'submit', class: 'danger', id: 'cancel-run', text: run.status === 'CANCELLING' ? 'Cancel again (e.g. forced)' : 'Cancel run' });
      cancelForm = h('section', { 'aria-labelledby': 'cancel-h', class: 'panel' },
        h('h2', { id: 'cancel-h', text: 'Cancel this run' }),
        h('form', { class: 'bar', onsubmit: async (ev) => {
          ev.preventDefault();
          btn.disabled = true;
          try {
            const r = await api('/runs/' + encodeURIComponent(runId) + '/cancel', { method: 'PUT', json: { reason: reason.value.trim() || undefined, force: force.checked } });
            result.textContent = `${r.status}: ${r.message} (${r.cancelled_tasks} task(s) cancelled)`;
            toast('Cancel requested for ' + runId);
            cancelForm = null;
            await load();
          } catch (e) {
            result.textContent = describe(e);
            btn.disabled = false;
          }
        } },
        h('label', { for: 'cancel-reason' }, 'Reason', reason),
        h('label', { class: 'check', for: 'cancel-force' }, force, 'Force: finalise now, without waiting for workers'),
        btn),
        result);
      return cancelForm;
    }
    function rerunSection() {
      const result = h('p', { role: 'status', 'aria-live': 'polite' });
      const btn = h('button', { type: 'button', id: 'rerun-run', text: 'Re-run failed tasks' });
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        try {
          const r = await api('/runs/' + encodeURIComponent(runId) + '/retry', { method: 'POST' });
          toast(`Re-run of ${runId}: ${r.status}`);
          await load();
        } catch (e) {
          result.textContent = describe(e);
          btn.disabled = false;
        }
      });
      return h('section', { 'aria-labelledby': 'rerun-h', class: 'panel' },
        h('h2', { id: 'rerun-h', text: 'Re-run this run' }),
        h('p', { class: 'note', text: 'Its failed, cancelled and skipped tasks run again, each with a fresh retry budget; succeeded tasks keep their results.' }),
        btn, result);
    }
    // A big run is a big answer: re-read it at most every 2 s rather than on every task transition.
    const reloadSmall = throttle(load, 200);
    const reloadBig = throttle(load, 2000);
    setView('run', {
      refresh: load,
      onCancel: (c) => { if (c.run_id === runId) reloadSmall(); },
      onRun: (r) => {
        if (r.run_id !== runId || r.last_seq === lastSeq) return;
        lastSeq = r.last_seq;
        (r.task_count > 200 ? reloadBig : reloadSmall)();
      },
    });
    load();
  }

  function cancellationSection(c) {
    return h('section', { 'aria-labelledby': 'cx-h', id: 'cancellation' },
      h('h2', { id: 'cx-h', text: 'Cancellation record' }),
      h('dl', { class: 'facts' },
        h('dt', { text: 'Reason' }), h('dd', { text: c.reason }),
        h('dt', { text: 'Cancelled by' }), h('dd', { text: c.cancelled_by }),
        h('dt', { text: 'Cancelled at' }), h('dd', { text: fmtTime(c.cancelled_at) }),
        h('dt', { text: 'Tasks cancelled' }), h('dd', { text: String(c.cancelled_tasks) }),
        h('dt', { text: 'Forced' }), h('dd', { text: c.forced ? 'yes' : 'no' }),
        h('dt', { text: 'Finalised' }), h('dd', { text: c.finalised_at ? `${fmtTime(c.finalised_at)} by ${c.finalised_by}` : 'not yet (waiting for running tasks)' }),
        h('dt', { text: 'Deadlock reason' }), h('dd', { text: c.deadlock_reason || '—' })));
  }

  // ---------- DAG ----------
  const FILL = { PENDING: '#e5e7eb', QUEUED: '#ede9fe', RUNNING: '#dbeafe', SUCCEEDED: '#d1fae5', FAILED: '#fee2e2', CANCELLED: '#fef3c7', SKIPPED: '#f3f4f6' };
  const STROKE = { PENDING: '#6b7280', QUEUED: '#6d28d9', RUNNING: '#1d4ed8', SUCCEEDED: '#047857', FAILED: '#b91c1c', CANCELLED: '#92400e', SKIPPED: '#374151' };
  const GLYPH = { PENDING: '○', QUEUED: '⋯', RUNNING: '▶', SUCCEEDED: '✓', FAILED: '✗', CANCELLED: '⊘', SKIPPED: '↷' };
  // A pattern per state (besides colour and glyph), so the states read in greyscale and for colour-blind eyes.
  const PATTERN = { FAILED: 'pat-cross', CANCELLED: 'pat-hatch', SKIPPED: 'pat-dots', QUEUED: 'pat-vert' };
  const DASH = { PENDING: '4 3', QUEUED: '2 2', SKIPPED: '1 3' };

  function defs() {
    const pat = (id, ...kids) => s('pattern', { id, width: 8, height: 8, patternUnits: 'userSpaceOnUse' }, ...kids);
    return s('defs', {},
      s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#6b7280' })),
      pat('pat-hatch', s('path', { d: 'M0,8 L8,0', stroke: '#92400e', 'stroke-width': 1, opacity: 0.35 })),
      pat('pat-cross', s('path', { d: 'M0,0 L8,8 M8,0 L0,8', stroke: '#b91c1c', 'stroke-width': 1, opacity: 0.3 })),
      pat('pat-dots', s('circle', { cx: 4, cy: 4, r: 1, fill: '#374151', opacity: 0.4 })),
      pat('pat-vert', s('path', { d: 'M4,0 L4,8', stroke: '#6d28d9', 'stroke-width': 1, opacity: 0.3 })));
  }
  function swatch(st) {
    return s('svg', { width: 28, height: 16, 'aria-hidden': 'true' },
      defs(),
      s('rect', { x: 1, y: 1, width: 26, height: 14, rx: 3, fill: FILL[st], stroke: STROKE[st], 'stroke-width': 2, 'stroke-dasharray': DASH[st] || null }),
      PATTERN[st] ? s('rect', { x: 1, y: 1, width: 26, height: 14, rx: 3, fill: `url(#${PATTERN[st]})` }) : null,
      s('text', { x: 14, y: 12, 'text-anchor': 'middle', 'font-size': 10, fill: STROKE[st], text: GLYPH[st] }));
  }
  function layout(tasks) {
    // Longest-path layering (Kahn's order), iterative: deep chains do not touch the call stack.
    const byId = new Map(tasks.map((t, i) => [t.task_id, i]));
    const level = new Array(tasks.length).fill(0);
    const indeg = tasks.map((t) => t.depends_on.filter((d) => byId.has(d)).length);
    const children = tasks.map(() => []);
    tasks.forEach((t, i) => t.depends_on.forEach((d) => { if (byId.has(d)) children[byId.get(d)].push(i); }));
    const queue = [];
    indeg.forEach((n, i) => { if (n === 0) queue.push(i); });
    for (let q = 0; q < queue.length; q++) {
      const i = queue[q];
      for (const c of children[i]) {
        level[c] = Math.max(level[c], level[i] + 1);
        if (--indeg[c] === 0) queue.push(c);
      }
    }
    const columns = [];
    tasks.forEach((t, i) => { (columns[level[i]] = columns[level[i]] || []).push(i); });
    return { level, columns, byId };
  }
  function dagSection(run) {
    const tasks = run.tasks;
    const sec = h('section', { 'aria-labelledby': 'dag-h', id: 'dag-section' }, h('h2', { id: 'dag-h', text: 'DAG' }));
    sec.appendChild(h('ul', { class: 'legend', 'aria-label': 'Task states legend' }, TASK_STATES.map((st) => h('li', {}, swatch(st), st))));
    if (tasks.length > DAG_MAX_TASKS) {
      sec.appendChild(h('p', { class: 'note', text: `This run has ${tasks.length} tasks: too many to draw legibly. The table below lists them.` }));
      return sec;
    }
    const { columns, byId } = layout(tasks);
    const W = 150, H = 46, GX = 44, GY = 16, PAD = 12;
    const pos = new Map();
    columns.forEach((col, x) => col.forEach((i, y) => pos.set(i, { x: PAD + x * (W + GX), y: PAD + y * (H + GY) })));
    const width = PAD * 2 + columns.length * (W + GX) - GX;
    const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
    const counts = TASK_STATES.map((st) => [st, tasks.filter((t) => t.state === st).length]).filter(([, n]) => n).map(([st, n]) => `${n} ${st}`).join(', ');
    const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Dependency graph of ${tasks.length} tasks: ${counts}`, id: 'dag' }, defs());
    tasks.forEach((t, i) => t.depends_on.forEach((d) => {
      if (!byId.has(d)) return;
      const a = pos.get(byId.get(d)), b = pos.get(i);
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      svg.appendChild(s('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, fill: 'none', stroke: '#9ca3af', 'stroke-width': 1.5, 'marker-end': 'url(#arrow)' }));
    }));
    tasks.forEach((t, i) => {
      const p = pos.get(i);
      const st = t.state;
      const label = t.task_id.length > 18 ? t.task_id.slice(0, 17) + '…' : t.task_id;
      const g = s('g', { class: 'node', 'data-task-id': t.task_id, 'data-state': st, transform: `translate(${p.x},${p.y})` },
        s('title', { text: `${t.task_id}: ${st}${t.worker_id ? ' on ' + t.worker_id : ''}, attempts ${t.attempts}` }),
        s('rect', { width: W, height: H, rx: 6, fill: FILL[st] || '#fff', stroke: STROKE[st] || '#111', 'stroke-width': st === 'RUNNING' ? 3 : 2, 'stroke-dasharray': DASH[st] || null }),
        PATTERN[st] ? s('rect', { width: W, height: H, rx: 6, fill: `url(#${PATTERN[st]})` }) : null,
        s('text', { x: 8, y: 18, fill: '#111827', text: label }),
        s('text', { x: 8, y: 36, fill: STROKE[st] || '#111', 'font-weight': 700, text: `${GLYPH[st] || ''} ${st}` }));
      svg.appendChild(g);
    });
    sec.appendChild(h('div', { class: 'dag', tabindex: 0, 'aria-label': 'DAG drawing (scrollable)' }, svg));
    return sec;
  }
  // Each task's latest attempt from the run's history: when it started and, once it ended, when.
  function spans(events) {
    const out = {};
    for (const e of events) {
      if (!e.task_id || !e.at) continue;
      if (e.type === 'task_started') out[e.task_id] = { start: e.at, end: null };
      else if (['task_succeeded', 'task_failed', 'task_cancelled', 'task_attempt_failed'].includes(e.type) && out[e.task_id]) out[e.task_id].end = e.at;
    }
    return out;
  }
  function duration(span) {
    if (!span) return '—';
    const ms = (span.end ? Date.parse(span.end) : Date.now()) - Date.parse(span.start);
    const text = ms < 1000 ? ms + ' ms' : ms < 120000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms / 60000) + ' min';
    return span.end ? text : text + ' so far';
  }
  function timelineSection(events, more) {
    if (!events) return h('section', { 'aria-labelledby': 'tl-h' }, h('h2', { id: 'tl-h', text: 'Timeline' }), h('p', { class: 'note', text: 'The history could not be read.' }));
    const first = events.length && events[0].at ? Date.parse(events[0].at) : null;
    return h('section', { 'aria-labelledby': 'tl-h' },
      h('h2', { id: 'tl-h', text: `Timeline (${events.length}${more ? '+' : ''} events)` }),
      more ? h('p', { class: 'note', text: 'First 1000 events; deepline runs history prints them all.' }) : null,
      h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: 'timeline' },
        h('thead', {}, h('tr', {}, ['#', 'At', '+s', 'Event', 'Task', 'Attempt', 'By', 'Cause', 'Detail'].map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, events.map((e) => h('tr', { 'data-seq': String(e.seq), 'data-type': e.type },
          h('td', { 'data-label': '#', text: String(e.seq) }),
          h('td', { 'data-label': 'At', text: fmtTime(e.at) }),
          h('td', { 'data-label': '+s', text: first != null && e.at ? ((Date.parse(e.at) - first) / 1000).toFixed(3) : '—' }),
          h('td', { 'data-label': 'Event', text: e.type.replace(/_/g, ' ') }),
          h('td', { 'data-label': 'Task', class: 'mono', text: e.task_id || '—' }),
          h('td', { 'data-label': 'Attempt', text: e.attempt != null ? String(e.attempt) : '—' }),
          h('td', { 'data-label': 'By', class: 'mono', text: e.by || '—' }),
          h('td', { 'data-label': 'Cause', text: e.cause || '—' }),
          h('td', { 'data-label': 'Detail', text: e.detail || '—' })))))));
  }
  // A QUEUED task waiting for resources: what it waits for and which runs hold it (the run's resource_waits).
  function waitNote(t, waits) {
    if (!t.waiting_for || t.waiting_for.length === 0) return null;
    const text = t.waiting_for.map((name) => {
      const w = waits.find((x) => x.resource === name);
      const holders = w ? w.holders.map((hd) => hd.run_id) : [];
      return holders.length ? `${name}, held by run ${holders.join(', run ')}` : name;
    }).join('; ');
    return h('span', { class: 'note waits', text: 'waits for ' + text });
  }
  function tasksSection(run, taskSpans, waits) {
    const shown = run.tasks.slice(0, TASKS_SHOWN);
    const tbody = h('tbody', {}, shown.map((t) => h('tr', { 'data-task-id': t.task_id },
      h('td', { class: 'id', 'data-label': 'Task', text: t.task_id }),
      h('td', { 'data-label': 'Type', text: `${t.type} (${t.pool})` }),
      h('td', { 'data-label': 'State' }, badge(t.state), waitNote(t, waits)),
      h('td', { 'data-label': 'Depends on', class: 'mono', text: t.depends_on.join(', ') || '—' }),
      h('td', { 'data-label': 'Attempts', text: String(t.attempts) }),
      h('td', { 'data-label': 'Worker', class: 'mono', text: t.worker_id || '—' }),
      h('td', { 'data-label': 'Heartbeat', text: t.last_heartbeat_at ? ago(t.last_heartbeat_at) : '—', title: fmtTime(t.last_heartbeat_at) }),
      h('td', { 'data-label': 'Updated', text: fmtTime(t.updated_at) }),
      h('td', { 'data-label': 'Started', text: taskSpans && taskSpans[t.task_id] ? fmtTime(taskSpans[t.task_id].start) : '—' }),
      h('td', { 'data-label': 'Duration', text: taskSpans ? duration(taskSpans[t.task_id]) : '—' }),
      h('td', { 'data-label': 'Details' },
        t.error ? h('p', { class: 'error', text: t.error }) : null,
        t.params ? h('details', {}, h('summary', { text: 'params' }), h('pre', { text: JSON.stringify(t.params, null, 2) })) : null,
        t.result ? h('details', {}, h('summary', { text: 'result' }), h('pre', { text: JSON.stringify(t.result, null, 2) })) : null))));
    return h('section', { 'aria-labelledby': 'tasks-h' },
      h('h2', { id: 'tasks-h', text: 'Tasks' }),
      run.tasks.length > TASKS_SHOWN ? h('p', { class: 'note', text: `First ${TASKS_SHOWN} of ${run.tasks.length} tasks.` }) : null,
      h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: 'tasks' },
        h('thead', {}, h('tr', {}, ['Task', 'Type (pool)', 'State', 'Depends on', 'Attempts', 'Worker', 'Heartbeat', 'Updated', 'Started', 'Duration', 'Details'].map((c) => h('th', { scope: 'col', text: c })))),
        tbody)));
  }
  function ignoredSection(run) {
    const list = run.ignored_events || [];
    return h('section', { 'aria-labelledby': 'ign-h' },
      h('h2', { id: 'ign-h', text: `Ignored events (${run.ignored_events_total})` }),
      list.length === 0 ? h('p', { class: 'note', text: 'None: no late or impossible event reached this run.' })
        : h('div', { class: 'table-wrap' }, h('table', { class: 'stack' },
          h('thead', {}, h('tr', {}, ['Task', 'Event', 'Reason', 'At'].map((c) => h('th', { scope: 'col', text: c })))),
          h('tbody', {}, list.map((e) => h('tr', {},
            h('td', { class: 'id', 'data-label': 'Task', text: e.task_id }),
            h('td', { 'data-label': 'Event', text: e.event }),
            h('td', { 'data-label': 'Reason', text: e.reason }),
            h('td', { 'data-label': 'At', text: fmtTime(e.at) })))))));
  }

  // ---------- stuck runs and incidents ----------
  function stuckPage() {
    const main = clear($('#main'));
    document.title = 'Stuck runs · Deepline';
    const monitor = h('div', { id: 'monitor' }, h('p', { text: 'Loading…' }));
    const incidents = h('div', { id: 'incidents' });
    const autoCancels = h('div', { id: 'auto-cancels' });
    const scanOut = h('div', { id: 'scan-result', 'aria-live': 'polite' });
    const num = (id, label, help) => {
      const input = h('input', { id, name: id, type: 'number', min: 1, max: 31536000, step: 1, inputmode: 'numeric', placeholder: help });
      return [input, h('label', { for: id }, label, input)];
    };
    const [ps, psl] = num('scan-pending', 'pending_stale_s', 'node default');
    const [ws, wsl] = num('scan-workflow', 'workflow_stale_s', 'node default');
    const [hb, hbl] = num('scan-heartbeat', 'heartbeat_timeout_s', 'node default');
    const [lim, liml] = num('scan-limit', 'limit (1..500)', '500');
    lim.max = 500;
    const scanBtn = h('button', { type: 'submit', id: 'scan-run', text: 'Scan (dry run)' });
    const scanForm = h('form', { class: 'bar', 'aria-label': 'What-if scan', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = {};
      const put = (k, el) => { if (el.value !== '') body[k] = parseInt(el.value, 10); };
      put('pending_stale_s', ps); put('workflow_stale_s', ws); put('heartbeat_timeout_s', hb); put('limit', lim);
      scanBtn.disabled = true;
      clear(scanOut).appendChild(h('p', { text: 'Scanning…' }));
      try {
        const r = await api('/deadlock/scan', { method: 'POST', json: body });
        clear(scanOut);
        append(scanOut, [h('p', { text: `Scanned at ${fmtTime(r.scanned_at)} with pending_stale_s ${r.thresholds.pending_stale_s}, workflow_stale_s ${r.thresholds.workflow_stale_s}, heartbeat_timeout_s ${r.thresholds.heartbeat_timeout_s}: ${r.candidates} candidate(s), ${r.flagged.length} flagged. Nothing was alerted or cancelled.` }),
          r.flagged.length ? detectionTable(r.flagged, 'Would be flagged', false) : null]);
      } catch (e) {
        clear(scanOut).appendChild(errorBox(e));
      } finally {
        scanBtn.disabled = false;
      }
    } }, psl, wsl, hbl, liml, scanBtn);
    const waitGraph = h('div', { id: 'wait-graph-section' });
    append(main, [h('h1', { text: 'Stuck runs and incidents' }), monitor,
      h('h2', { text: 'Open incidents' }), incidents,
      h('h2', { id: 'wait-graph-h', text: 'Resource waits (wait-for graph)' }), waitGraph,
      h('h2', { text: 'Recent auto-cancels' }), autoCancels,
      h('h2', { text: 'What-if scan' }),
      h('p', { class: 'note', text: 'Which runs would be flagged now under other thresholds (per-run thresholds still win). A dry run: nothing is alerted or cancelled.' }),
      scanForm, scanOut]);
    async function load() {
      const [stats, health, inc, cancelled, graph] = await Promise.allSettled([api('/stats'), api('/health'), api('/deadlock/incidents?limit=100'), api('/runs/cancelled?limit=100'), api('/deadlock/wait-for-graph?limit=50')]);
      clear(waitGraph);
      if (graph.status === 'fulfilled') append(waitGraph, waitGraphSection(graph.value));
      else waitGraph.appendChild(errorBox(graph.reason));
      clear(monitor);
      if (stats.status === 'fulfilled') {
        const m = stats.value.deadlock_monitor;
        const hm = health.status === 'fulfilled' ? health.value.deadlock_monitor : null;
        append(monitor, [h('div', { class: 'cards' },
          card('Monitor', hm ? (hm.running ? 'running' : 'not running') : '?', hm ? `scan every ${hm.check_interval_s} s; last ${hm.last_scan ? ago(hm.last_scan) : 'never'}` : ''),
          card('Detected', m.deadlocks_detected, Object.entries(m.by_reason).filter(([, n]) => n).map(([r, n]) => `${r} ${n}`).join(', ') || 'none'),
          card('Open incidents', m.open_incidents, 'stuck or being cancelled'),
          card('Auto-cancelled', m.workflows_cancelled, hm ? (hm.cancel_on_deadlock ? 'cancel_on_deadlock on' : 'cancel_on_deadlock off') : ''),
          card('Alerts sent', m.alerts_sent, `${m.alerts_failed} failed, ${m.alerts_dead_letter} waiting`),
          card('False positives', m.false_positives, `rate ${m.false_positive_rate}`),
          card('Mean detection', m.avg_detection_time_s + ' s', 'stuck → detected'))]);
      } else monitor.appendChild(errorBox(stats.reason));
      clear(incidents);
      if (inc.status === 'fulfilled') {
        const list = inc.value.incidents;
        incidents.appendChild(list.length ? detectionTable(list, `${inc.value.open_incidents} open incident(s), newest first`, true)
          : h('p', { class: 'note', id: 'no-incidents', text: 'No open incidents: the monitor finds nothing stuck.' }));
      } else incidents.appendChild(errorBox(inc.reason));
      clear(autoCancels);
      if (cancelled.status === 'fulfilled') {
        const autos = cancelled.value.filter((r) => r.deadlock_reason).slice(0, 20);
        autoCancels.appendChild(autos.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: 'auto-cancel-table' },
          h('thead', {}, h('tr', {}, ['Run', 'Workflow', 'Detector', 'Status', 'Cancelled at'].map((c) => h('th', { scope: 'col', text: c })))),
          h('tbody', {}, autos.map((r) => h('tr', { 'data-run-id': r.run_id },
            h('td', { class: 'id', 'data-label': 'Run' }, h('a', { href: '#/run/' + encodeURIComponent(r.run_id), text: r.run_id })),
            h('td', { 'data-label': 'Workflow', text: r.workflow_name || '—' }),
            h('td', { 'data-label': 'Detector', text: r.deadlock_reason }),
            h('td', { 'data-label': 'Status' }, badge(r.status)),
            h('td', { 'data-label': 'Cancelled at', text: fmtTime(r.cancelled_at) }))))))
          : h('p', { class: 'note', text: 'None yet.' }));
      } else autoCancels.appendChild(errorBox(cancelled.reason));
    }
    const reload = throttle(load, 300);
    setView('stuck', { refresh: load, onMonitor: reload, onRun: (r) => { if (r.deadlock_reason) reload(); } });
    load();
  }
  // ---------- wait-for graph (resources) ----------
  // Holder ids are run ids, or worker/<id> for an external worker's claim (no run id contains '/').
  function partyName(id) { return id.startsWith('worker/') ? 'worker ' + id.slice(7) : 'run ' + id; }
  function waitGraphSection(g) {
    const out = [];
    if (g.resources.length === 0 && g.open_deadlocks.length === 0) {
      out.push(h('p', { class: 'note', id: 'no-waits', text: 'No resource waits: every run and worker that asked for a resource holds it.' }));
      return out;
    }
    const onCycle = new Set();
    const victims = new Set(g.open_deadlocks.map((d) => d.victim));
    g.open_deadlocks.forEach((d) => d.runs.forEach((r) => { onCycle.add(r.run_id); onCycle.add(r.holds); onCycle.add(r.waits_for); }));
    // Parties (runs, workers) on the left, resources on the right; an edge per wait (party -> resource) and per holding (resource -> party).
    const parties = [];
    const seen = new Set();
    const addParty = (id) => { if (!seen.has(id)) { seen.add(id); parties.push(id); } };
    const edges = [];
    g.resources.forEach((r) => {
      r.holders.forEach((x) => { addParty(x.run_id); edges.push({ kind: 'hold', party: x.run_id, resource: r.name, count: x.count }); });
      r.waiters.forEach((x) => { addParty(x.run_id); edges.push({ kind: 'wait', party: x.run_id, resource: r.name, count: x.count }); });
    });
    const W = 190, H = 40, GAP = 220, GY = 14, PAD = 14;
    const rows = Math.max(parties.length, g.resources.length);
    const width = PAD * 2 + W * 2 + GAP, height = PAD * 2 + rows * (H + GY) - GY;
    const py = new Map(parties.map((p, i) => [p, PAD + i * (H + GY)]));
    const ry = new Map(g.resources.map((r, i) => [r.name, PAD + i * (H + GY)]));
    const xp = PAD, xr = PAD + W + GAP;
    const svg = s('svg', { id: 'wait-graph', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
      'aria-label': `Wait-for graph: ${parties.length} runs or workers, ${g.resources.length} resources, ${edges.filter((e) => e.kind === 'wait').length} waits, ${g.open_deadlocks.length} open deadlock(s). The list below says the same in words.` },
      s('defs', {},
        s('marker', { id: 'wf-arrow-wait', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#b91c1c' })),
        s('marker', { id: 'wf-arrow-hold', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#1d4ed8' }))));
    edges.forEach((e) => {
      const yP = py.get(e.party) + H / 2, yR = ry.get(e.resource) + H / 2;
      // Waits leave the party's upper half, holdings arrive at its lower half: the two directions never overlap.
      const d = e.kind === 'wait'
        ? `M${xp + W},${yP - 8} C${xp + W + GAP / 2},${yP - 8} ${xr - GAP / 2},${yR - 8} ${xr},${yR - 8}`
        : `M${xr},${yR + 8} C${xr - GAP / 2},${yR + 8} ${xp + W + GAP / 2},${yP + 8} ${xp + W},${yP + 8}`;
      svg.appendChild(s('path', { d, class: 'wf-edge', 'data-edge': e.kind, 'data-party': e.party, 'data-resource': e.resource, fill: 'none',
        stroke: e.kind === 'wait' ? '#b91c1c' : '#1d4ed8', 'stroke-width': 2, 'stroke-dasharray': e.kind === 'wait' ? '6 4' : null,
        'marker-end': `url(#wf-arrow-${e.kind})` },
        s('title', { text: e.kind === 'wait' ? `${partyName(e.party)} waits for ${e.count} of ${e.resource}` : `${e.resource}: ${e.count} held by ${partyName(e.party)}` })));
    });
    const box = (x, y, id, label, sub, kind) => {
      const hot = onCycle.has(id);
      const cut = (t) => (t.length > 24 ? t.slice(0, 23) + '…' : t);
      return s('g', { class: 'node' + (hot ? ' on-cycle' : ''), 'data-id': id, 'data-kind': kind, transform: `translate(${x},${y})` },
        s('title', { text: `${label}${sub ? ': ' + sub : ''}${hot ? ' (on an open deadlock)' : ''}` }),
        s('rect', { width: W, height: H, rx: kind === 'resource' ? 2 : 10, fill: kind === 'resource' ? '#f9fafb' : '#fff', stroke: hot ? '#b91c1c' : '#374151', 'stroke-width': hot ? 3 : 1.5 }),
        s('text', { x: 8, y: 16, fill: '#111827', text: (hot ? '⚠ ' : '') + cut(label) }),
        s('text', { x: 8, y: 32, fill: '#4b5563', 'font-size': 11, text: cut(sub) }));
    };
    parties.forEach((p) => svg.appendChild(box(xp, py.get(p), p, partyName(p), victims.has(p) ? 'victim, being cancelled' : (p.startsWith('worker/') ? 'external worker' : 'run'), 'party')));
    g.resources.forEach((r) => svg.appendChild(box(xr, ry.get(r.name), r.name, r.name, `${r.used} of ${r.capacity} used, ${r.waiter_count} waiting`, 'resource')));
    out.push(h('ul', { class: 'legend', 'aria-label': 'Wait-for graph legend' },
      h('li', { text: 'dashed red arrow: waits for' }), h('li', { text: 'solid blue arrow: held by' }), h('li', { text: '⚠ red border: on an open resource deadlock' })));
    out.push(h('div', { class: 'dag', tabindex: 0, 'aria-label': 'Wait-for graph drawing (scrollable)' }, svg));
    if (g.waited_resources > g.resources.length)
      out.push(h('p', { class: 'note', text: `${g.resources.length} of ${g.waited_resources} resources with waiters shown (those on open deadlocks first).` }));
    if (g.open_deadlocks.length)
      out.push(h('ul', { id: 'open-deadlocks', 'aria-label': 'Open resource deadlocks' },
        g.open_deadlocks.map((d) => h('li', { 'data-victim': d.victim, text: `${d.explanation} — victim: ${partyName(d.victim)}` }))));
    out.push(h('ul', { id: 'wait-list', 'aria-label': 'Who waits for what' },
      g.waits.map((w) => h('li', { 'data-waiter': w.waiter, 'data-resource': w.resource, text: `${partyName(w.waiter)} ${w.explanation}` }))));
    return out;
  }

  function card(label, n, sub) {
    return h('div', { class: 'card' }, h('span', { class: 'n', text: String(n) }), h('span', { class: 'l', text: label }), sub ? h('div', { class: 'note', text: sub }) : null);
  }
  function detectionTable(list, caption, incident) {
    const cols = ['Run', 'Reason', 'Explanation', 'Stuck tasks', 'Stuck since'].concat(incident ? ['Detected', 'Alerted', 'Cancelled'] : []);
    return h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: incident ? 'incident-table' : 'scan-table' },
      h('caption', { text: caption }),
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, list.map((d) => h('tr', { 'data-run-id': d.run_id },
        h('td', { class: 'id', 'data-label': 'Run' }, h('a', { href: '#/run/' + encodeURIComponent(d.run_id), text: d.run_id })),
        h('td', { 'data-label': 'Reason', text: d.reason }),
        h('td', { 'data-label': 'Explanation', text: d.explanation }),
        h('td', { 'data-label': 'Stuck tasks', class: 'mono', text: (d.stuck_tasks || []).join(', ') || '—' }),
        h('td', { 'data-label': 'Stuck since', text: `${fmtTime(d.stuck_since)} (${ago(d.stuck_since)})` }),
        incident ? h('td', { 'data-label': 'Detected', text: fmtTime(d.detected_at) }) : null,
        incident ? h('td', { 'data-label': 'Alerted', text: d.alerted ? 'yes' : 'no' }) : null,
        incident ? h('td', { 'data-label': 'Cancelled', text: d.cancelled ? 'yes' : (d.auto_cancel ? 'not yet' : 'no (cancel_on_deadlock was off)') }) : null)))));
  }

  // ---------- pools ----------
  // External pools' task queues on this node (GET /pools): what waits, for how long, and whether anyone polls.
  function poolsPage() {
    const main = clear($('#main'));
    document.title = 'Pools · Deepline';
    const body = h('div', { id: 'pools' }, h('p', { text: 'Loading…' }));
    append(main, [h('h1', { text: 'Pools' }),
      h('p', { class: 'note', text: 'Task queues of external worker pools on this node: each node queues the ready tasks of the runs it hosts. In-cluster pools run their tasks at once and are not listed.' }),
      body]);
    async function load() {
      let pools;
      try { pools = await api('/pools'); } catch (e) { clear(body); body.appendChild(errorBox(e)); return; }
      clear(body);
      const unpolled = pools.filter((p) => p.no_poller_for_s != null);
      const queued = pools.reduce((n, p) => n + p.queue_depth, 0);
      append(body, [h('div', { class: 'cards' },
        card('Pools', pools.length, ''), card('Queued tasks', queued, ''),
        card('Pollers', pools.reduce((n, p) => n + p.pollers, 0), 'workers that polled in the last 30 s'),
        card('Without a poller', unpolled.length, unpolled.map((p) => p.pool).join(', ')))]);
      if (!pools.length) { body.appendChild(h('p', { text: 'No external pool has queued a task or been polled on this node yet.' })); return; }
      body.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: 'pools-table' },
        h('caption', { text: 'Queues' }),
        h('thead', {}, h('tr', {}, ['Pool', 'Queued', 'Oldest waiting', 'Pollers', 'Waiting polls', 'Last poll', 'Status'].map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, pools.map((p) => h('tr', { 'data-pool': p.pool },
          h('td', { class: 'id', 'data-label': 'Pool', text: p.pool }),
          h('td', { 'data-label': 'Queued', text: String(p.queue_depth) }),
          h('td', { 'data-label': 'Oldest waiting', text: p.oldest_queued_age_s == null ? '—' : `${p.oldest_queued_age_s.toFixed(1)} s` }),
          h('td', { 'data-label': 'Pollers', text: String(p.pollers) }),
          h('td', { 'data-label': 'Waiting polls', text: String(p.waiting_polls) }),
          h('td', { 'data-label': 'Last poll', text: p.last_poll_at ? `${fmtTime(p.last_poll_at)} (${ago(p.last_poll_at)})` : 'never' }),
          h('td', { 'data-label': 'Status', class: p.no_poller_for_s != null ? 'warn' : '',
            text: p.no_poller_for_s != null ? `⚠ tasks queued, no worker polling for ${p.no_poller_for_s.toFixed(0)} s` : (p.queue_depth ? 'draining' : 'idle') })))))));
    }
    setView('pools', { refresh: load });
    state.pollTimer = setInterval(load, 2000);
    load();
  }

  // ---------- cluster ----------
  function clusterPage() {
    const main = clear($('#main'));
    document.title = 'Cluster · Deepline';
    const members = h('div', { id: 'members' }, h('p', { text: 'Loading…' }));
    const shards = h('div', { id: 'shards' });
    const counters = h('div', { id: 'counters' });
    const charts = h('div', { class: 'charts', id: 'charts' });
    append(main, [h('h1', { text: 'Cluster' }), members, h('h2', { text: 'Shard distribution' }), shards,
      h('h2', { text: 'Monitor and index' }), counters,
      h('h2', { text: 'Over time' }),
      h('p', { class: 'note', text: 'Sampled by this node every few seconds since it started (kept for the last hour).' }), charts]);
    async function load() {
      const [m, r, st, tl] = await Promise.allSettled([api('/cluster/members'), api('/cluster/sharding/regions'), api('/stats'), api('/ui/api/timeline')]);
      clear(members);
      if (m.status === 'fulfilled') {
        const v = m.value;
        append(members, [h('div', { class: 'cards' }, card('Members', v.count, ''), card('Unreachable', v.unreachable.length, v.unreachable.join(', ')),
          card('Leader', v.leader ? v.leader.replace(/^akka(\.ssl)?\.tcp:\/\//, '') : 'none', '')),
        h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: 'members-table' },
          h('caption', { text: 'Members' }),
          h('thead', {}, h('tr', {}, ['Address', 'Roles', 'Status', 'Reachable', 'Leader', 'This node'].map((c) => h('th', { scope: 'col', text: c })))),
          h('tbody', {}, v.members.map((x) => h('tr', {},
            h('td', { class: 'id', 'data-label': 'Address', text: x.address }),
            h('td', { 'data-label': 'Roles', text: x.roles.join(', ') || '—' }),
            h('td', { 'data-label': 'Status', text: x.status }),
            h('td', { 'data-label': 'Reachable', text: x.reachable ? 'yes' : 'NO' }),
            h('td', { 'data-label': 'Leader', text: x.leader ? 'leader' : '' }),
            h('td', { 'data-label': 'This node', text: x.self ? 'this node' : '' }))))))]);
      } else members.appendChild(errorBox(m.reason));
      clear(shards);
      if (r.status === 'fulfilled') {
        for (const t of r.value.types) {
          const max = Math.max(1, ...t.regions.map((x) => x.entities));
          shards.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'stack' },
            h('caption', { text: `Type ${t.type_name}` }),
            h('thead', {}, h('tr', {}, ['Node', 'Shards', 'Entities', ''].map((c) => h('th', { scope: 'col', text: c })))),
            h('tbody', {}, t.regions.map((x) => h('tr', {},
              h('td', { class: 'id', 'data-label': 'Node', text: x.node }),
              h('td', { 'data-label': 'Shards', text: String(x.shards) }),
              h('td', { 'data-label': 'Entities', text: String(x.entities) + (x.failed_shards.length ? ` (${x.failed_shards.length} failed shards)` : '') }),
              h('td', { 'data-label': 'Share' }, s('svg', { width: 160, height: 12, 'aria-hidden': 'true' },
                s('rect', { class: 'bar-track', width: 160, height: 12 }), s('rect', { class: 'bar-fill', width: Math.round(160 * x.entities / max), height: 12 })))))))));
        }
      } else shards.appendChild(errorBox(r.reason));
      clear(counters);
      if (st.status === 'fulfilled') {
        const d = st.value.deadlock_monitor;
        append(counters, [h('div', { class: 'cards' },
          card('Detected', d.deadlocks_detected, ''), card('Auto-cancelled', d.workflows_cancelled, ''), card('Open incidents', d.open_incidents, ''),
          card('Scan errors', d.scan_errors, `last scan ${d.last_scan_duration_ms} ms`), card('Projection lag', st.value.run_index.projection_lag, 'journal events'),
          card('Quarantined', st.value.run_index.quarantined_total, 'index events'))]);
      } else counters.appendChild(errorBox(st.reason));
      clear(charts);
      if (tl.status === 'fulfilled') {
        const pts = tl.value.points;
        const reasons = ['no_runnable_task', 'no_heartbeat', 'stale_pending', 'run_timeout'];
        append(charts, [
          chart('Detections by reason (cumulative)', pts, reasons.map((r) => ({ name: r, get: (p) => p.detections_by_reason[r] || 0 }))),
          chart('Cancels', pts, [{ name: 'auto-cancelled (monitor)', get: (p) => p.workflows_cancelled }, { name: 'cancels completed (seen by this node)', get: (p) => p.cancels_completed }]),
          chart('Cancel completion ms (cancel → CANCELLED)', pts, [{ name: 'p50', get: (p) => p.cancel_completion_p50_ms }, { name: 'p99', get: (p) => p.cancel_completion_p99_ms }]),
          chart('Projection lag (journal events)', pts, [{ name: 'lag', get: (p) => p.projection_lag }]),
        ]);
      } else charts.appendChild(errorBox(tl.reason));
    }
    setView('cluster', { refresh: load, onMonitor: throttle(load, 1000) });
    state.pollTimer = setInterval(load, 5000);
    load();
  }

  // A small line chart drawn by hand: each series has its own dash pattern and marker, so it reads without colour.
  const SERIES_STYLE = [
    { stroke: '#1d4ed8', dash: null }, { stroke: '#b91c1c', dash: '6 3' }, { stroke: '#047857', dash: '2 2' }, { stroke: '#92400e', dash: '8 3 2 3' },
  ];
  function chart(title, pts, series) {
    const W = 360, H = 150, L = 40, R = 8, T = 8, B = 20;
    const values = series.map((sr) => pts.map((p) => sr.get(p)));
    const all = values.flat().filter((v) => v !== null && v !== undefined);
    const max = Math.max(1, ...all);
    const n = pts.length;
    const x = (i) => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const latest = series.map((sr, k) => `${sr.name} ${values[k].length ? (values[k][n - 1] ?? '—') : '—'}`).join(', ');
    const svg = s('svg', { class: 'plot', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}. ${n} samples. Latest: ${latest}` },
      s('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#9ca3af' }),
      s('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#9ca3af' }),
      s('text', { x: L - 4, y: T + 8, 'text-anchor': 'end', text: fmtNum(max) }),
      s('text', { x: L - 4, y: H - B, 'text-anchor': 'end', text: '0' }),
      n ? s('text', { x: L, y: H - 4, text: new Date(pts[0].at).toISOString().slice(11, 19) }) : null,
      n ? s('text', { x: W - R, y: H - 4, 'text-anchor': 'end', text: new Date(pts[n - 1].at).toISOString().slice(11, 19) }) : null);
    series.forEach((sr, k) => {
      const st = SERIES_STYLE[k % SERIES_STYLE.length];
      const d = values[k].map((v, i) => (v === null || v === undefined ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean).join(' ');
      if (d) svg.appendChild(s('polyline', { points: d, fill: 'none', stroke: st.stroke, 'stroke-width': 2, 'stroke-dasharray': st.dash }));
    });
    const legend = h('ul', { class: 'legend' }, series.map((sr, k) => {
      const st = SERIES_STYLE[k % SERIES_STYLE.length];
      return h('li', {}, s('svg', { width: 24, height: 8, 'aria-hidden': 'true' }, s('line', { x1: 0, y1: 4, x2: 24, y2: 4, stroke: st.stroke, 'stroke-width': 2, 'stroke-dasharray': st.dash })), sr.name);
    }));
    return h('figure', { class: 'chart' }, h('h3', { text: title }), svg, legend, n === 0 ? h('p', { class: 'note', text: 'No samples yet.' }) : null);
  }
  function fmtNum(v) { return v >= 1000 ? (v / 1000).toFixed(1) + 'k' : String(Math.round(v * 10) / 10); }

  // ---------- start ----------
  async function start() {
    stopStream();
    let ok;
    try {
      ok = await whoami();
    } catch (e) {
      clear($('#main')).appendChild(errorBox(e));
      return;
    }
    renderWho();
    if (!ok) {
      const had = !!sessionStorage.getItem(KEY);
      sessionStorage.removeItem(KEY);
      renderWho();
      renderSignIn(had ? 'That key was not accepted.' : null);
      return;
    }
    route();
    connectStream();
  }
  window.addEventListener('hashchange', () => { if (state.me) route(); });
  document.addEventListener('DOMContentLoaded', () => {
    $('#signout').addEventListener('click', () => {
      sessionStorage.removeItem(KEY);
      state.me = null;
      stopStream();
      renderWho();
      renderSignIn(null);
    });
    start();
  });
})();
