// The hub's web page: plain JavaScript for current browsers, no framework and
// no build step, because the hub serves this file as it is from its binary.
//
// Shape, and why:
// - The session is the hub's HttpOnly cookie; the script never sees or keeps
//   the token. Any 401 means the session ended (logout elsewhere, password
//   change, expiry), so the page drops everything and shows the login form.
// - Notifications and job changes come over Server-Sent Events. The stream
//   starts after the newest notification this page already listed, so a
//   reload does not toast old news; when the connection drops, the browser
//   reconnects by itself and sends Last-Event-ID, and the hub replays what
//   was missed. Job changes are not replayed, so the job list is re-read
//   whenever the stream (re)opens.
// - Printer status has no push channel of its own: the list is re-read every
//   few seconds while the page is visible, and soon after any job changes.
// - The Content-Security-Policy allows no inline script or style: markup is
//   built with DOM calls and styled with classes; the only style set from
//   here is the bars' width and colour, through the CSSOM, which the policy
//   permits.

'use strict';

const PRINTER_POLL_MS = 5000;
const PRINTER_SOON_MS = 700;
const EVENTS_RETRY_MS = 3000;
const SUCCESS_TOAST_MS = 15000;
const MAX_TOASTS = 4;
const HISTORY_SHOWN = 30;
const NOTIFICATION_PAGE = 500;

// Reason keywords (protocol reasons, IPP printer-state-reasons) in words.
const REASONS = {
  'media-jam': 'Paper jam',
  'media-empty': 'Out of paper',
  'media-low': 'Paper running low',
  'media-needed': 'Needs paper loaded',
  'door-open': 'A door or cover is open',
  'input-tray-missing': 'A paper tray is missing',
  'output-tray-missing': 'The output tray is missing',
  'output-area-almost-full': 'Output tray almost full',
  'output-area-full': 'Output tray full',
  'toner-low': 'Toner running low',
  'toner-empty': 'Out of toner',
  'marker-supply-low': 'Ink or toner running low',
  'marker-supply-empty': 'Out of ink or toner',
  'marker-supply-missing': 'A cartridge is missing',
  'marker-waste-almost-full': 'Waste toner container almost full',
  'marker-waste-full': 'Waste toner container full',
  'opc-near-eol': 'Drum nearly worn out',
  'opc-life-over': 'Drum worn out',
  'developer-low': 'Developer running low',
  'developer-empty': 'Out of developer',
  'fuser-under-temp': 'Warming up',
  'fuser-over-temp': 'Fuser too hot',
  'interpreter-resource-unavailable': 'Lacks memory or a font for this job',
  'paused': 'Paused by an operator',
  'offline': 'Not answering',
  'printer-stopped': 'Stopped',
  'not-accepting-jobs': 'Not taking jobs',
  'document-format-not-supported': 'Cannot print this kind of file',
  'document-unprintable': 'Could not print this document',
  'document-too-large': 'Document too large',
  'document-checksum-mismatch': 'Document damaged on the way',
  'document-fetch-failed': 'Could not download the document',
  'job-expired': 'Waited too long and expired',
  'deadline-exceeded': 'Did not finish in time',
  'outcome-unknown': 'Not known whether it printed',
  'invalid-offer': 'Refused the job as sent',
  'job-canceled-by-user': 'Canceled by you',
  'job-canceled-at-device': 'Canceled at the printer',
  'aborted-by-system': 'The printer gave up',
  'other': 'Another problem',
};

const PRINTER_STATES = {
  idle: 'Ready',
  processing: 'Printing',
  stopped: 'Stopped',
  unknown: 'Not answering',
};

// Job state -> [words, tone]. The tone picks the colour.
const JOB_STATES = {
  queued: ['Waiting to be sent', 'pending'],
  sent: ['Sent to the printer', 'pending'],
  accepted: ['Accepted by the printer', 'pending'],
  processing: ['Printing', 'active'],
  stopped: ['Stopped', 'problem'],
  completed: ['Printed', 'done'],
  aborted: ['Failed', 'problem'],
  canceled: ['Canceled', 'ended'],
  rejected: ['Refused', 'problem'],
};
const FINAL_STATES = new Set(['completed', 'aborted', 'canceled', 'rejected']);

const LEVEL_STATES = { low: 'low', empty: 'empty', missing: 'missing', unknown: 'state unknown' };

const $ = (id) => document.getElementById(id);

const state = {
  user: null,
  // Bumped when a session ends: an answer to a request made before then
  // belongs to the old session and is dropped, so nothing of one user's
  // can appear after the next one logs in on the same browser.
  generation: 0,
  printers: new Map(), // id -> JSON text of what is shown, to skip redraws
  jobs: new Map(), // id -> job
  lastNotification: 0,
  events: null,
  eventsRetry: null,
  printerTimer: null,
  printerSoon: null,
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
    // Set when the session ended with or before this answer: the login
    // form says so already, and there is nothing left to show it in.
    this.sessionEnded = false;
  }
}

/** A JSON API call; throws ApiError with the hub's own words on failure. */
async function api(method, path, body) {
  const generation = state.generation;
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'The hub cannot be reached. Check the network connection and try again.');
  }
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // Not JSON: a proxy's error page or a cut connection; the status says enough.
  }
  if (generation !== state.generation) {
    const stale = new ApiError(resp.status, 'the session ended meanwhile');
    stale.sessionEnded = true;
    throw stale;
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, (data && data.error) || `The hub answered ${resp.status} ${resp.statusText}.`);
    if (resp.status === 401 && state.user) {
      endSession('Your session has ended. Please log in again.');
      err.sessionEnded = true;
    }
    throw err;
  }
  return data;
}

/** Shows an error in `el`, in the hub's words where it gave some. */
function showError(target, err) {
  if (err instanceof ApiError && err.sessionEnded) return;
  target.textContent = err instanceof ApiError ? err.message : `Something went wrong: ${err}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'type') node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/**
 * Sorts a list's items in place, moving nothing when the order is right
 * already (a moved element loses keyboard focus).
 */
function keepOrder(list, compare) {
  const items = [...list.children];
  const sorted = [...items].sort(compare);
  if (sorted.every((item, i) => item === items[i])) return;
  list.append(...sorted);
}

function reasonWords(r) {
  return REASONS[r] || `The printer reports “${r}”`;
}

function time(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** A label for this device, from the browser's own description of itself. */
function deviceLabel() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge'
    : /Firefox\//.test(ua) ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua) ? 'Chrome'
        : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android'
    : /iPhone|iPad/.test(ua) ? 'iOS'
      : /Windows/.test(ua) ? 'Windows'
        : /CrOS/.test(ua) ? 'ChromeOS'
          : /Mac OS X/.test(ua) ? 'macOS'
            : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

// ---------------------------------------------------------------- views

function showLogin(message) {
  $('loading').hidden = true;
  $('app-view').hidden = true;
  $('session').hidden = true;
  $('live').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message || '';
  if (!$('login-device').value) $('login-device').value = deviceLabel();
  $('login-username').focus();
}

async function showApp(me) {
  const generation = state.generation;
  state.user = me;
  $('loading').hidden = true;
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('session').hidden = false;
  $('live').hidden = false;
  $('whoami').textContent = `${me.name} · ${me.device}`;
  $('whoami').dataset.user = me.name;
  renderCounters(me.counters);
  updateNotifyButton();
  await Promise.all([refreshPrinters(), refreshJobs(), loadHistory()]);
  if (generation !== state.generation) return; // the session ended while loading
  openEvents();
  state.printerTimer = setInterval(() => {
    if (document.visibilityState === 'visible') refreshPrinters();
  }, PRINTER_POLL_MS);
}

/** Forgets everything of the session and goes back to the login form. */
function endSession(message) {
  state.generation += 1;
  closeEvents();
  clearInterval(state.printerTimer);
  clearTimeout(state.printerSoon);
  state.printerTimer = null;
  state.user = null;
  state.printers.clear();
  state.jobs.clear();
  state.lastNotification = 0;
  for (const id of ['printers', 'jobs', 'notification-list', 'toasts']) $(id).replaceChildren();
  for (const id of ['app-error', 'printers-error', 'print-error', 'print-status', 'jobs-error', 'notifications-error', 'counters']) {
    $(id).textContent = '';
  }
  $('notifications-empty').hidden = false;
  $('jobs-empty').hidden = false;
  $('printers-empty').hidden = true;
  $('print-form').reset();
  setLive('closed');
  showLogin(message);
}

// ---------------------------------------------------------------- login

async function onLogin(ev) {
  ev.preventDefault();
  const error = $('login-error');
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  if (!username || !password) {
    error.textContent = 'Enter your name and password.';
    return;
  }
  error.textContent = '';
  $('login-submit').disabled = true;
  try {
    await api('POST', '/api/login', { username, password, device: $('login-device').value.trim() });
    $('login-password').value = '';
    await showApp(await api('GET', '/api/me'));
  } catch (err) {
    showError(error, err);
  } finally {
    $('login-submit').disabled = false;
  }
}

async function onLogout() {
  try {
    await api('POST', '/api/logout');
  } catch (err) {
    // A session that had already ended is as good as logged out.
    if (!(err instanceof ApiError && err.status === 401)) {
      showError($('app-error'), err);
      return;
    }
  }
  endSession('You are logged out.');
}

// ---------------------------------------------------------------- printers

async function refreshPrinters() {
  try {
    const { printers } = await api('GET', '/api/printers');
    $('printers-error').textContent = '';
    renderPrinters(printers);
  } catch (err) {
    showError($('printers-error'), err);
  }
}

async function freshStatus(id, button) {
  button.disabled = true;
  try {
    const answer = await api('GET', `/api/printers/${encodeURIComponent(id)}/status`);
    $('printers-error').textContent = answer.stale
      ? `${id} did not answer in time; this is its last known status.`
      : '';
    await refreshPrinters();
  } catch (err) {
    showError($('printers-error'), err);
  } finally {
    button.disabled = false;
  }
}

function renderPrinters(printers) {
  const list = $('printers');
  const seen = new Set();
  printers.sort((a, b) => a.id.localeCompare(b.id));
  for (const p of printers) {
    seen.add(p.id);
    const json = JSON.stringify(p);
    const item = list.querySelector(`li[data-printer="${CSS.escape(p.id)}"]`);
    if (item && state.printers.get(p.id) === json) continue;
    state.printers.set(p.id, json);
    const fresh = printerCard(p);
    if (item) item.replaceWith(fresh);
    else list.append(fresh);
  }
  for (const item of [...list.children]) {
    if (!seen.has(item.dataset.printer)) {
      state.printers.delete(item.dataset.printer);
      item.remove();
    }
  }
  keepOrder(list, (a, b) => a.dataset.printer.localeCompare(b.dataset.printer));
  $('printers-empty').hidden = printers.length > 0;
  renderPrinterChoice(printers);
}

function printerCard(p) {
  const s = p.status;
  const printerState = s ? s.state : 'unknown';
  const words = !p.online ? 'Offline' : s ? PRINTER_STATES[s.state] || s.state : 'No status yet';
  const reasons = s ? s.reasons.filter((r) => r !== 'none') : [];
  const item = el('li', {
    class: 'printer',
    'data-printer': p.id,
    'data-online': String(p.online),
    'data-state': printerState,
  });
  item.append(
    el('div', { class: 'printer-head' },
      el('h3', { text: p.id }),
      el('span', {
        class: `badge ${p.online ? 'online' : 'offline'}`,
        'data-role': 'availability',
        text: p.online ? 'Online' : 'Offline',
      })),
    el('p', { class: `printer-state tone-${p.online ? printerState : 'offline'}`, 'data-role': 'state', text: words }),
  );
  if (!p.online) {
    item.append(el('p', { class: 'hint', text: 'The print bridge serving this printer is not connected; jobs wait until it is back.' }));
  }
  if (reasons.length) {
    item.append(el('ul', { class: 'reasons', 'data-role': 'reasons' },
      ...reasons.map((r) => el('li', { 'data-reason': r, text: reasonWords(r) }))));
  }
  if (s && s.message) item.append(el('p', { class: 'message', text: `The printer says: ${s.message}` }));
  const levels = [
    ...(s ? s.supplies : []).map((x) => level('supply', x.name, x.level_percent, x.state, x.color)),
    ...(s ? s.trays : []).map((x) => level('tray', x.name, x.level_percent, x.state, null)),
  ];
  if (levels.length) item.append(el('div', { class: 'levels' }, ...levels));
  const meta = [];
  if (s && s.queued_jobs) meta.push(`${s.queued_jobs} job${s.queued_jobs === 1 ? '' : 's'} waiting`);
  if (s && s.at) meta.push(`as of ${time(s.at)}`);
  const refresh = el('button', { type: 'button', class: 'secondary small', 'data-action': 'refresh', text: 'Check now' });
  refresh.addEventListener('click', () => freshStatus(p.id, refresh));
  item.append(el('div', { class: 'printer-foot' }, el('span', { class: 'meta', text: meta.join(' · ') }), refresh));
  return item;
}

/** One supply or tray: name, a bar and the level in words. */
function level(kind, name, percent, levelState, color) {
  const known = Number.isInteger(percent);
  const note = LEVEL_STATES[levelState];
  const words = [known ? `${percent}%` : 'level unknown', note].filter(Boolean).join(', ');
  const fill = el('span', { class: 'fill' });
  if (known) fill.style.width = `${percent}%`;
  if (color && CSS.supports('color', color)) fill.style.backgroundColor = color;
  const bar = el('span', {
    class: `bar ${levelState}`,
    role: 'meter',
    'aria-label': name,
    'aria-valuemin': '0',
    'aria-valuemax': '100',
    'aria-valuenow': known ? String(percent) : undefined,
    'aria-valuetext': words,
  }, fill);
  return el('div', { class: `level ${kind}`, 'data-level': kind },
    el('span', { class: 'level-name', text: name }),
    bar,
    el('span', { class: `level-value ${levelState}`, text: words }));
}

function renderPrinterChoice(printers) {
  const select = $('print-printer');
  const chosen = select.value;
  const wanted = printers.map((p) => [p.id, p.online ? p.id : `${p.id} (offline)`]);
  const now = [...select.options].slice(1).map((o) => [o.value, o.textContent]);
  if (JSON.stringify(wanted) === JSON.stringify(now)) return;
  select.replaceChildren(select.options[0],
    ...wanted.map(([value, text]) => el('option', { value, text })));
  select.value = wanted.some(([v]) => v === chosen) ? chosen : '';
  if (!select.value && printers.length === 1) select.value = printers[0].id;
}

// ---------------------------------------------------------------- printing

function onFileChosen() {
  const file = $('print-file').files[0];
  $('print-title').placeholder = file ? file.name : '';
}

async function onPrint(ev) {
  ev.preventDefault();
  const error = $('print-error');
  const status = $('print-status');
  error.textContent = '';
  status.textContent = '';
  const file = $('print-file').files[0];
  const printer = $('print-printer').value;
  if (!file) {
    error.textContent = 'Choose a file to print.';
    $('print-file').focus();
    return;
  }
  if (!printer) {
    error.textContent = 'Choose a printer.';
    $('print-printer').focus();
    return;
  }
  const form = new FormData();
  form.append('printer', printer);
  form.append('title', $('print-title').value.trim() || file.name);
  for (const id of ['print-copies', 'print-sides', 'print-color', 'print-quality', 'print-orientation', 'print-media', 'print-pages']) {
    const input = $(id);
    const value = input.value.trim();
    if (value) form.append(input.name, value);
  }
  // The file last: the hub reads the small fields before the document.
  form.append('file', file, file.name);
  $('print-submit').disabled = true;
  status.textContent = `Sending ${file.name}…`;
  try {
    const job = await api('POST', '/api/jobs', form);
    upsertJob(job);
    status.textContent = job.state === 'queued'
      ? `The hub has ${file.name}; it goes to ${printer} as soon as the message broker confirms.`
      : `${file.name} was sent to ${printer}.`;
    $('print-file').value = '';
    $('print-title').value = '';
    onFileChosen();
  } catch (err) {
    status.textContent = '';
    showError(error, err);
  } finally {
    $('print-submit').disabled = false;
  }
}

// ---------------------------------------------------------------- jobs

async function refreshJobs() {
  // Only jobs known before asking can be missing from the answer for a
  // reason: one submitted meanwhile may simply be newer than it.
  const known = new Set(state.jobs.keys());
  try {
    const { jobs } = await api('GET', '/api/jobs');
    $('jobs-error').textContent = '';
    const listed = new Set(jobs.map((j) => j.id));
    // A job the hub no longer lists ended while this page was not
    // listening: printed jobs are deleted, so keep it and say so.
    for (const [id, job] of state.jobs) {
      if (known.has(id) && !listed.has(id) && !FINAL_STATES.has(job.state)) {
        upsertJob({ ...job, state: 'completed', reasons: [], message: null });
      }
    }
    for (const job of jobs) upsertJob(job);
  } catch (err) {
    showError($('jobs-error'), err);
  }
}

async function cancelJob(id, button) {
  button.disabled = true;
  $('jobs-error').textContent = '';
  try {
    upsertJob(await api('POST', `/api/jobs/${encodeURIComponent(id)}/cancel`));
  } catch (err) {
    button.disabled = false;
    showError($('jobs-error'), err);
  }
}

function upsertJob(job) {
  const before = state.jobs.get(job.id);
  if (before && JSON.stringify(before) === JSON.stringify(job)) return;
  state.jobs.set(job.id, job);
  const list = $('jobs');
  const row = jobRow(job);
  const old = list.querySelector(`li[data-job-id="${CSS.escape(job.id)}"]`);
  if (old) old.replaceWith(row);
  else list.append(row);
  keepOrder(list, (a, b) => (b.dataset.created || '').localeCompare(a.dataset.created || ''));
  $('jobs-empty').hidden = state.jobs.size > 0;
  if (before && !FINAL_STATES.has(before.state) && FINAL_STATES.has(job.state)) refreshCounters();
}

function jobRow(job) {
  const [words, tone] = JOB_STATES[job.state] || [job.state, 'pending'];
  const shown = job.cancel_requested && !FINAL_STATES.has(job.state) ? 'Canceling…' : words;
  const row = el('li', {
    class: 'job',
    'data-job-id': job.id,
    'data-state': job.state,
    'data-created': job.created_at,
  });
  const details = [`on ${job.printer}`];
  if (job.ticket && job.ticket.copies > 1) details.push(`${job.ticket.copies} copies`);
  if (job.pages_completed) details.push(`${job.pages_completed} page${job.pages_completed === 1 ? '' : 's'} done`);
  if (job.created_at) details.push(time(job.created_at));
  row.append(
    el('div', { class: 'job-main' },
      el('span', { class: 'job-title', text: job.title || job.id }),
      el('span', { class: `job-state tone-${tone}`, 'data-role': 'state', text: shown })),
    el('p', { class: 'meta', text: details.join(' · ') }),
  );
  const reasons = (job.reasons || []).filter((r) => r !== 'none');
  if (reasons.length && !['completed', 'processing'].includes(job.state)) {
    row.append(el('p', { class: 'job-reasons', text: reasons.map(reasonWords).join(', ') }));
  }
  if (job.message && job.state !== 'completed') row.append(el('p', { class: 'message', text: job.message }));
  if (!FINAL_STATES.has(job.state) && !job.cancel_requested) {
    const cancel = el('button', { type: 'button', class: 'secondary small', 'data-action': 'cancel', text: 'Cancel' });
    cancel.setAttribute('aria-label', `Cancel ${job.title || job.id}`);
    cancel.addEventListener('click', () => cancelJob(job.id, cancel));
    row.append(cancel);
  }
  return row;
}

async function refreshCounters() {
  try {
    const me = await api('GET', '/api/me');
    renderCounters(me.counters);
  } catch {
    // Counters are a nicety; a failure here shows elsewhere soon enough.
  }
}

function renderCounters(counters) {
  const parts = (counters || []).map((c) => {
    const bits = [`${c.completed} printed`];
    if (c.failed) bits.push(`${c.failed} failed`);
    if (c.canceled) bits.push(`${c.canceled} canceled`);
    if (c.pages) bits.push(`${c.pages} page${c.pages === 1 ? '' : 's'}`);
    return `${c.printer}: ${bits.join(', ')}`;
  });
  $('counters').textContent = parts.length ? `So far — ${parts.join('; ')}.` : '';
}

// ---------------------------------------------------------------- notifications

/**
 * Reads every notification of the user, oldest first, so the stream can
 * start after the newest one; the newest few are listed as history.
 */
async function loadHistory() {
  let after = 0;
  let recent = [];
  try {
    for (;;) {
      const { notifications } = await api('GET', `/api/notifications?after=${after}&limit=${NOTIFICATION_PAGE}`);
      recent = recent.concat(notifications).slice(-HISTORY_SHOWN);
      if (notifications.length) after = notifications[notifications.length - 1].id;
      if (notifications.length < NOTIFICATION_PAGE) break;
    }
  } catch (err) {
    if (err.sessionEnded) return;
    // The stream then replays from the last one read: old news may toast
    // again, but nothing is missed.
    showError($('notifications-error'), err);
  }
  state.lastNotification = Math.max(state.lastNotification, after);
  for (const n of recent) addToHistory(n);
}

function addToHistory(n) {
  const list = $('notification-list');
  list.prepend(el('li', {
    class: `notification kind-${n.kind}`,
    'data-notification-id': String(n.id),
    'data-kind': n.kind,
    'data-job-id': n.job_id,
  },
  el('p', { class: 'n-title' }, el('time', { dateTime: n.created_at, text: time(n.created_at) }), ' ', n.title),
  el('p', { class: 'n-action', text: n.action }),
  el('p', { class: 'n-body', text: n.body })));
  while (list.children.length > HISTORY_SHOWN) list.lastElementChild.remove();
  $('notifications-empty').hidden = true;
}

function onNotification(n) {
  if (n.id <= state.lastNotification) return; // already shown (replay overlap)
  state.lastNotification = n.id;
  addToHistory(n);
  toast(n);
  systemNotification(n);
}

/**
 * A toast per job: a newer notification about the same job replaces the
 * older one, so "jammed" gives way to "printed". Failures stay until
 * dismissed; good news fades.
 */
function toast(n) {
  const box = $('toasts');
  const good = n.kind === 'completed';
  const node = el('div', {
    class: `toast kind-${n.kind}`,
    'data-kind': n.kind,
    'data-job-id': n.job_id,
    'data-notification-id': String(n.id),
  });
  const close = el('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', text: '×' });
  close.addEventListener('click', () => node.remove());
  node.append(
    el('div', { class: 'toast-text' },
      el('p', { class: 'toast-title', text: n.title }),
      el('p', { class: 'toast-action', text: n.action }),
      el('p', { class: 'toast-body', text: n.body })),
    close,
  );
  const previous = box.querySelector(`.toast[data-job-id="${CSS.escape(n.job_id)}"]`);
  if (previous) previous.replaceWith(node);
  else box.append(node);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  if (good) setTimeout(() => node.remove(), SUCCESS_TOAST_MS);
}

/** A notification from the system too, when allowed and the page is not in view (the toast covers that). */
function systemNotification(n) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  if (document.visibilityState === 'visible') return;
  const shown = new Notification(n.title, { body: `${n.action}\n${n.body}`, tag: `spoolcast-job-${n.job_id}` });
  shown.addEventListener('click', () => {
    window.focus();
    shown.close();
  });
}

function updateNotifyButton() {
  $('notify-enable').hidden = !('Notification' in window) || Notification.permission !== 'default';
}

async function onEnableNotifications() {
  // Asked only here, on the user's click: browsers ignore or penalise asking on load.
  try {
    await Notification.requestPermission();
  } finally {
    updateNotifyButton();
  }
}

// ---------------------------------------------------------------- live events

function setLive(s) {
  const live = $('live');
  live.dataset.state = s;
  live.textContent = { open: 'Live', connecting: 'Reconnecting…', closed: 'Offline' }[s];
}

function openEvents() {
  closeEvents();
  // The query only matters for the first connection; on reconnects the
  // browser's Last-Event-ID header (which the hub prefers) carries on.
  const es = new EventSource(`/api/events?last_event_id=${state.lastNotification}`);
  state.events = es;
  setLive('connecting');
  es.addEventListener('open', () => {
    setLive('open');
    refreshJobs();
  });
  es.addEventListener('notification', (e) => onNotification(JSON.parse(e.data)));
  es.addEventListener('job', (e) => {
    upsertJob(JSON.parse(e.data));
    // A job that changed state usually means its printer did too (a jam,
    // the end of one): show that now rather than at the next poll.
    clearTimeout(state.printerSoon);
    state.printerSoon = setTimeout(refreshPrinters, PRINTER_SOON_MS);
  });
  es.addEventListener('error', () => {
    if (es.readyState !== EventSource.CLOSED) {
      setLive('connecting'); // the browser retries by itself
      return;
    }
    // The hub answered with an error status (401 once the session is gone):
    // browsers do not retry that. Find out which, then retry or log out.
    // api() itself ends the session on a 401; anything else is retried.
    closeEvents();
    setLive('connecting');
    api('GET', '/api/me').catch(() => null).then(() => {
      if (state.user) state.eventsRetry = setTimeout(openEvents, EVENTS_RETRY_MS);
    });
  });
}

function closeEvents() {
  clearTimeout(state.eventsRetry);
  state.eventsRetry = null;
  if (state.events) state.events.close();
  state.events = null;
}

// ---------------------------------------------------------------- start

function start() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('print-form').addEventListener('submit', onPrint);
  $('print-file').addEventListener('change', onFileChosen);
  $('notify-enable').addEventListener('click', onEnableNotifications);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.user) refreshPrinters();
  });
  api('GET', '/api/me').then(showApp, (err) => {
    showLogin(err.status === 401 ? '' : err.message);
  });
}

start();
