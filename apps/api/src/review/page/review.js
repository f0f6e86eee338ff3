// Cutout review page: plain ES module, no build step, no dependencies.
// The review token is only ever in location.pathname; it is never stored or logged.

const PAGE_SIZE = 48;
const POLL_MS = 3000;
const REFRESH_MIN_MS = 2000;
const STATUS_LABELS = {
  queued: 'Queued',
  processing: 'Processing',
  succeeded: 'Succeeded',
  failed: 'Failed',
  canceled: 'Canceled',
};
const EMPTY_TEXT = {
  all: 'There are no items in this batch.',
  succeeded: 'No items have succeeded yet.',
  failed: 'No items have failed.',
  rejected: 'No items are flagged as wrong.',
  quality_flagged: 'No cutout was flagged by the automatic checks.',
};

const base = location.pathname.replace(/\/+$/, '');
const numberFmt = new Intl.NumberFormat('en');
const dateFmt = new Intl.DateTimeFormat('en', {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
  timeZoneName: 'short',
});

const $ = (selector) => document.querySelector(selector);
const byTestId = (id) => $(`[data-testid="${id}"]`);
const ui = {
  header: $('#site-header'),
  subject: $('#subject'),
  expiry: $('#expiry'),
  main: $('#main'),
  progress: byTestId('progress'),
  progressBar: $('#progress-bar'),
  progressText: byTestId('progress-text'),
  downloads: $('#downloads'),
  manifestCsv: byTestId('manifest-csv'),
  manifestJsonl: byTestId('manifest-jsonl'),
  filters: $('#filters'),
  itemsHeading: $('#items-heading'),
  gridAlert: $('#grid-alert'),
  gridStatus: $('#grid-status'),
  grid: $('#grid'),
  pager: $('#pager'),
  prev: byTestId('page-prev'),
  next: byTestId('page-next'),
  pageStatus: byTestId('page-status'),
};

const state = {
  kind: null,
  progress: null,
  items: [],
  ready: false,
  dead: false,
  filter: 'all',
  cursors: [null] /* cursors[i] fetches page i + 1 */,
  pageIndex: 0,
  nextCursor: null,
  loading: false,
  loadSeq: 0,
  pendingFlags: new Set(),
  abort: new AbortController(),
  events: null,
  pollTimer: null,
  refreshTimer: null,
  lastRefresh: 0,
};
const cardKeys = new WeakMap(); // card element → JSON of the item it shows
let idCounter = 0;

// ---------- helpers ----------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
}

const fmt = (n) => numberFmt.format(Number.isFinite(n) ? n : 0);
const isPending = (item) => item?.status === 'queued' || item?.status === 'processing';
const parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

// Only http(s) URLs end up in href/src, whatever the server sends.
function safeUrl(value) {
  if (typeof value !== 'string' || !value) return null;
  try {
    const url = new URL(value, location.href);
    return /^https?:$/.test(url.protocol) ? value : null;
  } catch {
    return null;
  }
}

function etaText(ms) {
  const minutes = Math.round(ms / 60000);
  if (minutes < 1) return 'less than a minute left';
  if (minutes < 60) return `about ${minutes} min left`;
  const rest = minutes % 60;
  return `about ${Math.floor(minutes / 60)} h${rest ? ` ${rest} min` : ''} left`;
}

// ---------- API ----------

async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers,
      body: body && JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal: state.abort.signal,
    });
  } catch {
    throw new Error('Could not reach the server. Check your connection and try again.');
  }
  const payload = await res.json().catch(() => null);
  if (res.ok && payload) return payload;
  const message =
    payload?.error?.message ||
    (res.ok ? 'The server sent an unexpected response.' : `The request failed (HTTP ${res.status}).`);
  if (res.status === 401 || res.status === 410) showFatal(message);
  throw Object.assign(new Error(message), { status: res.status, code: payload?.error?.code });
}

// Replaces everything that came from the review data with the error view.
function showFatal(message) {
  if (state.dead) return;
  state.dead = true;
  state.abort.abort();
  closeEvents();
  clearTimeout(state.pollTimer);
  clearTimeout(state.refreshTimer);
  state.items = [];
  state.progress = null;
  $('.skip-link')?.remove();
  ui.header.replaceChildren(el('p', { class: 'brand', text: 'Cutout review' }));
  const heading = el('h1', { tabindex: '-1', text: 'This review link cannot be used' });
  ui.main.replaceChildren(
    el(
      'section',
      { class: 'error-page', 'data-testid': 'error-page' },
      heading,
      el('p', { text: message || 'This review link is invalid or has expired.' }),
      el('p', { text: 'Ask whoever shared this link for a new one.' }),
    ),
  );
  document.title = 'Cutout review — link not usable';
  document.body.dataset.state = 'error';
  heading.focus();
}

// ---------- header, progress, filters, pager ----------

function renderHeader(data) {
  const isJob = data.kind === 'job';
  ui.subject.replaceChildren(
    isJob ? 'Job ' : 'Batch ',
    el('code', { text: (isJob ? data.job.id : data.batch.id) ?? '' }),
  );
  const expires = new Date(data.expires_at);
  if (Number.isNaN(expires.getTime())) return;
  ui.expiry.replaceChildren(
    'Link expires ',
    el('time', { datetime: expires.toISOString(), text: dateFmt.format(expires) }),
  );
}

function renderManifest(manifest) {
  const links = [
    [ui.manifestCsv, safeUrl(manifest?.csv)],
    [ui.manifestJsonl, safeUrl(manifest?.jsonl)],
  ];
  for (const [link, url] of links) {
    if (url) link.href = url;
    link.hidden = !url;
  }
  ui.downloads.hidden = links.every(([, url]) => !url);
}

function progressText({ counts: c, status, eta }) {
  const parts = [
    `${fmt(c.succeeded + c.failed + c.canceled)} of ${fmt(c.total)} done`,
    `${fmt(c.succeeded)} succeeded`,
    `${fmt(c.failed)} failed`,
  ];
  if (c.canceled) parts.push(`${fmt(c.canceled)} canceled`);
  if (status === 'completed') parts.push('Completed');
  else if (status === 'canceled') parts.push('Canceled');
  else if (Number.isFinite(eta?.remaining_ms)) parts.push(etaText(eta.remaining_ms));
  return parts.join(' · ');
}

function filterCount(filter) {
  const p = state.progress;
  if (!p) return 0;
  return filter === 'rejected' ? p.review?.rejected : (p.counts[filter === 'all' ? 'total' : filter] ?? 0);
}

function renderPager() {
  if (state.kind !== 'batch') return;
  const pages = Math.max(1, Math.ceil(filterCount(state.filter) / PAGE_SIZE), state.pageIndex + 1);
  ui.pageStatus.textContent = `Page ${state.pageIndex + 1} of ${fmt(pages)}`;
  ui.prev.disabled = state.loading || state.pageIndex === 0;
  ui.next.disabled = state.loading || !state.nextCursor;
}

function applyProgress(next) {
  const prev = state.progress;
  const c = next.counts;
  state.progress = next;
  ui.progressBar.max = Math.max(c.total, 1); // <progress> needs max > 0
  ui.progressBar.value = c.succeeded + c.failed + c.canceled;
  const text = progressText(next);
  if (ui.progressText.textContent !== text) ui.progressText.textContent = text; // no needless live-region churn
  for (const button of ui.filters.querySelectorAll('[data-filter]')) {
    button.querySelector('.count').textContent = fmt(filterCount(button.dataset.filter));
  }
  renderPager();
  if (next.status !== 'processing') closeEvents(); // a closed EventSource does not reconnect
  if (state.ready && prev && pageMayHaveChanged(prev, next)) scheduleRefresh();
}

function pageMayHaveChanged(prev, next) {
  const [a, b] = [prev.counts, next.counts];
  switch (state.filter) {
    case 'succeeded':
      return a.succeeded !== b.succeeded;
    case 'failed':
      return a.failed !== b.failed;
    case 'quality_flagged':
      return a.quality_flagged !== b.quality_flagged;
    // Our own flag clicks change this count too; those must not pull the card out from under the user.
    case 'rejected':
      return prev.review?.rejected !== next.review?.rejected && state.pendingFlags.size === 0;
    default:
      return Object.keys(a).some((key) => a[key] !== b[key]) && state.items.some(isPending);
  }
}

// ---------- live updates: SSE, falling back to polling /data ----------

function connectEvents() {
  if (typeof EventSource !== 'function') return startPolling();
  const source = new EventSource(`${base}/events`);
  state.events = source;
  source.addEventListener('progress', (event) => {
    const progress = parseJson(event.data);
    if (progress?.counts) applyProgress(progress);
  });
  source.addEventListener('end', () => {
    closeEvents();
    refreshSummary().then(startPolling); // startPolling is a no-op unless still processing
  });
  source.addEventListener('expired', (event) => {
    const data = parseJson(event.data);
    showFatal(data?.error?.message ?? data?.message ?? 'This review link has expired.');
  });
  source.addEventListener('revoked', (event) => {
    const data = parseJson(event.data);
    showFatal(data?.error?.message ?? 'This review link was revoked.');
  });
  source.addEventListener('error', () => {
    if (state.events !== source || source.readyState !== EventSource.CLOSED) return; // CONNECTING: the browser retries
    closeEvents();
    refreshSummary().then(startPolling); // also surfaces a 401/410 right away
  });
}

function closeEvents() {
  state.events?.close();
  state.events = null;
}

function startPolling() {
  clearTimeout(state.pollTimer);
  const keepPolling = state.kind === 'job' ? isPending(state.items[0]) : state.progress?.status === 'processing';
  if (state.dead || !keepPolling) return;
  state.pollTimer = setTimeout(() => refreshSummary().then(startPolling), POLL_MS);
}

async function refreshSummary() {
  try {
    const data = await api('/data');
    if (state.kind === 'batch' && data.batch) applyProgress(data.batch);
    if (state.kind === 'job' && data.job) {
      state.items = [data.job];
      renderItems(state.items);
    }
  } catch {
    // 401/410 already replaced the page; anything else is retried on the next tick.
  }
}

function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(
    () => {
      state.refreshTimer = null;
      if (state.dead || state.loading) return; // a user-started load brings fresh data anyway
      state.lastRefresh = Date.now();
      loadPage({ quiet: true });
    },
    Math.max(0, state.lastRefresh + REFRESH_MIN_MS - Date.now()),
  );
}

// ---------- item pages ----------

function setLoading(on) {
  state.loading = on;
  ui.grid.setAttribute('aria-busy', String(on));
  if (on) ui.grid.replaceChildren();
  ui.gridStatus.textContent = on ? 'Loading…' : '';
  renderPager();
}

function showGridAlert(message, retry) {
  const button = el('button', { type: 'button', text: 'Retry' });
  button.addEventListener('click', () => {
    ui.itemsHeading.focus();
    retry();
  });
  ui.gridAlert.replaceChildren(el('div', { class: 'alert', role: 'alert' }, el('p', { text: message }), button));
}

function markReady() {
  state.ready = true;
  document.body.dataset.state = 'ready';
}

// quiet: background refresh after a progress change — no loading state, no alerts, no focus or scroll changes.
async function loadPage({ quiet = false } = {}) {
  const seq = ++state.loadSeq;
  const params = new URLSearchParams({ filter: state.filter, limit: String(PAGE_SIZE) });
  if (state.cursors[state.pageIndex]) params.set('cursor', state.cursors[state.pageIndex]);
  if (!quiet) {
    ui.gridAlert.replaceChildren();
    setLoading(true);
  }
  try {
    const page = await api(`/items?${params}`);
    if (seq !== state.loadSeq || state.dead) return;
    const items = Array.isArray(page.data) ? page.data : [];
    if (quiet && !items.length && state.pageIndex > 0) {
      // this page emptied out: step back
      state.pageIndex -= 1;
      return loadPage({ quiet: true });
    }
    state.items = items;
    state.nextCursor = page.next_cursor ?? null;
    if (!quiet) setLoading(false);
    renderItems(items);
    ui.gridStatus.textContent = items.length ? '' : EMPTY_TEXT[state.filter];
    renderPager();
    markReady();
  } catch (err) {
    if (seq !== state.loadSeq || state.dead || quiet) return;
    setLoading(false);
    showGridAlert(`Could not load items: ${err.message}`, () => loadPage());
  }
}

// Updates the grid in place: unchanged cards (and their loaded images) stay put, and keyboard
// focus survives when the focused card is re-rendered.
function renderItems(items) {
  const active = document.activeElement;
  const activeCard = ui.grid.contains(active) ? active.closest('[data-testid="card"]') : null;
  const existing = new Map([...ui.grid.children].map((node) => [node.dataset.jobId, node]));
  const nodes = items.map((item) => {
    const old = existing.get(item.id);
    const keep = old && (state.pendingFlags.has(item.id) || cardKeys.get(old) === JSON.stringify(item));
    return keep ? old : buildCard(item);
  });
  let ref = ui.grid.firstChild;
  for (const node of nodes) {
    if (node === ref) ref = ref.nextSibling;
    else ui.grid.insertBefore(node, ref);
  }
  while (ref) {
    const stale = ref;
    ref = ref.nextSibling;
    stale.remove();
  }
  if (activeCard && !ui.grid.contains(active)) {
    const card = nodes.find((node) => node.dataset.jobId === activeCard.dataset.jobId);
    const target =
      card?.querySelector(`[data-testid="${active.dataset.testid}"]`) ?? card?.querySelector('button, a[href]');
    target?.focus({ preventScroll: true });
  }
}

function replaceCard(item) {
  state.items = state.items.map((existing) => (existing.id === item.id ? item : existing));
  const old = [...ui.grid.children].find((node) => node.dataset.jobId === item.id);
  if (!old) return;
  const focused = old.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
  const card = buildCard(item);
  old.replaceWith(card);
  if (focused)
    (card.querySelector(`[data-testid="${focused}"]`) ?? card.querySelector('[data-testid="flag-button"]'))?.focus({
      preventScroll: true,
    });
}

// ---------- cards ----------

const placeholder = (text, extra = '') => el('span', { class: `placeholder ${extra}`.trim(), text });

function thumb(url, alt, testid) {
  const src = safeUrl(url);
  if (!src) return placeholder('No preview');
  const img = el('img', { alt, loading: 'lazy', decoding: 'async', width: 160, height: 160, 'data-testid': testid });
  img.addEventListener('error', () => img.replaceWith(placeholder('No preview')), { once: true });
  img.src = src; // after the listener and loading="lazy"
  return img;
}

const figure = (caption, content, frameClass = '') =>
  el('figure', {}, el('div', { class: `frame ${frameClass}`.trim() }, content), el('figcaption', { text: caption }));

function cutoutSlot(item, ref) {
  if (item.status === 'failed') {
    return el(
      'div',
      { class: 'error-box', 'data-testid': 'card-error' },
      el('p', {}, el('code', { text: item.error?.code ?? 'failed' })),
      el('p', { text: item.error?.message ?? 'Processing failed.' }),
    );
  }
  if (isPending(item)) return figure('Cutout', placeholder('Processing…', 'is-processing'));
  if (item.status === 'canceled') return figure('Cutout', placeholder('Canceled'));
  return figure('Cutout', thumb(item.cutout_thumb_url, `Cutout: ${ref}`, 'img-cutout'), 'checker');
}

function buildCard(item) {
  const ref = item.client_ref || item.id;
  const titleId = `card-title-${++idCounter}`;
  const flagged = item.review?.verdict === 'rejected';
  const known = Object.hasOwn(STATUS_LABELS, item.status);
  const card = el(
    'article',
    {
      class: 'card',
      'data-testid': 'card',
      'data-job-id': item.id,
      'data-status': item.status,
      'data-review': flagged ? 'rejected' : null,
      'aria-labelledby': titleId,
    },
    el(
      'div',
      { class: 'card-head' },
      el('h3', { id: titleId, text: ref }),
      el('span', {
        class: `badge badge-${known ? item.status : 'other'}`,
        text: known ? STATUS_LABELS[item.status] : item.status,
      }),
    ),
  );
  if (flagged) card.append(el('p', { class: 'flag-marker', text: 'Flagged as wrong' }), noteForm(item));
  card.append(
    el(
      'div',
      { class: 'figures' },
      figure('Original', thumb(item.original_thumb_url, `Original: ${ref}`, 'img-original')),
      cutoutSlot(item, ref),
    ),
  );
  if (item.quality_flags?.length) card.append(qualityFlags(item.quality_flags));
  if (item.renditions?.length) card.append(renditionLinks(item.renditions, titleId));
  card.append(cardActions(item, titleId, flagged));
  cardKeys.set(card, JSON.stringify(item));
  return card;
}

// What the automatic checks found, in words; the cutout still succeeded.
function qualityFlags(flags) {
  return el(
    'div',
    { class: 'auto-flags', 'data-testid': 'quality-flags' },
    el('p', { class: 'auto-flags-title', text: 'Auto-flagged' }),
    el('ul', {}, ...flags.map(({ flag, text }) => el('li', { 'data-flag': flag, text }))),
  );
}

function renditionLinks(renditions, titleId) {
  return el(
    'p',
    { class: 'renditions', 'data-testid': 'renditions' },
    'Renditions: ',
    ...renditions.flatMap(({ name, url, error }, i) => {
      const href = safeUrl(url);
      const node = href
        ? el('a', { href, download: true, 'data-testid': 'rendition-link', 'aria-describedby': titleId, text: name })
        : el('span', { class: 'rendition-error', title: error ?? '', text: `${name} (not made)` });
      return i === 0 ? [node] : [' · ', node];
    }),
  );
}

function cardActions(item, titleId, flagged) {
  const actions = el('div', { class: 'card-actions' });
  const result = safeUrl(item.result_url);
  if (result) {
    actions.append(
      el('a', {
        class: 'button-link',
        href: result,
        download: true,
        'data-testid': 'result-link',
        'aria-describedby': titleId,
        text: 'Download result',
      }),
    );
  }
  // The server only accepts verdicts on succeeded jobs (409 otherwise); a flag can always be undone.
  if (item.status === 'succeeded' || flagged) {
    const button = el('button', {
      type: 'button',
      class: 'flag-button',
      'data-testid': 'flag-button',
      'aria-pressed': String(flagged),
      'aria-describedby': titleId,
      text: flagged ? 'Flagged — undo' : 'Flag as wrong',
      'aria-disabled': state.pendingFlags.has(item.id) ? 'true' : null, // re-rendered mid-request: says it is busy
    });
    button.addEventListener('click', () => toggleFlag(item, button));
    actions.append(button);
  }
  return actions;
}

// What is wrong with a flagged cutout, for whoever redoes it (at most 500 characters).
function noteForm(item) {
  const inputId = `note-${++idCounter}`;
  const input = el('input', {
    id: inputId,
    type: 'text',
    maxlength: 500,
    'data-testid': 'note-input',
    value: item.review?.note ?? '',
    autocomplete: 'off',
  });
  const save = el('button', { type: 'submit', 'data-testid': 'note-save', text: 'Save note' });
  const form = el(
    'form',
    { class: 'note-form' },
    el('label', { for: inputId, text: 'What is wrong? (optional)' }),
    el('div', { class: 'note-row' }, input, save),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (state.pendingFlags.has(item.id)) return;
    state.pendingFlags.add(item.id);
    save.setAttribute('aria-disabled', 'true');
    form.querySelector('.card-alert')?.remove();
    try {
      const note = input.value.trim();
      replaceCard(
        await api(`/items/${encodeURIComponent(item.id)}/review`, {
          method: 'PUT',
          body: { verdict: 'rejected', note: note || null },
        }),
      );
    } catch (err) {
      if (state.dead) return;
      form.append(
        el('p', { class: 'alert card-alert', role: 'alert', text: `Could not save the note: ${err.message}` }),
      );
    } finally {
      state.pendingFlags.delete(item.id);
      save.removeAttribute('aria-disabled');
    }
  });
  return form;
}

async function toggleFlag(item, button) {
  if (state.pendingFlags.has(item.id)) return;
  const card = button.closest('[data-testid="card"]');
  const flagged = item.review?.verdict === 'rejected';
  const label = button.textContent;
  state.pendingFlags.add(item.id);
  card.querySelector('.card-alert')?.remove();
  button.setAttribute('aria-disabled', 'true'); // not `disabled`: keyboard focus stays on the button
  button.textContent = flagged ? 'Removing flag…' : 'Flagging…';
  const path = `/items/${encodeURIComponent(item.id)}/review`;
  try {
    const updated = flagged
      ? await api(path, { method: 'DELETE' })
      : await api(path, { method: 'PUT', body: { verdict: 'rejected', note: null } });
    replaceCard(updated);
    // Fetch the authoritative "Flagged" count while still pending, so it cannot trigger a grid refresh.
    if (state.kind === 'batch') await refreshSummary();
  } catch (err) {
    if (state.dead) return;
    button.removeAttribute('aria-disabled');
    button.textContent = label;
    card.append(
      el('p', { class: 'alert card-alert', role: 'alert', text: `Could not update the flag: ${err.message}` }),
    );
  } finally {
    state.pendingFlags.delete(item.id);
    // The card may have been re-rendered meanwhile: free whichever flag button it has now.
    [...ui.grid.children]
      .find((node) => node.dataset.jobId === item.id)
      ?.querySelector('[data-testid="flag-button"]')
      ?.removeAttribute('aria-disabled');
  }
}

// ---------- start-up ----------

function goToPage(index) {
  state.pageIndex = index;
  ui.itemsHeading.focus(); // the pager sits below the grid: bring keyboard and view back to the top
  loadPage();
}

function bindControls() {
  ui.filters.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-filter]');
    if (!button || button.dataset.filter === state.filter) return;
    state.filter = button.dataset.filter;
    for (const other of ui.filters.querySelectorAll('button[data-filter]'))
      other.setAttribute('aria-pressed', String(other === button));
    Object.assign(state, { cursors: [null], pageIndex: 0, nextCursor: null });
    loadPage();
  });
  ui.prev.addEventListener('click', () => {
    if (!state.loading && state.pageIndex > 0) goToPage(state.pageIndex - 1);
  });
  ui.next.addEventListener('click', () => {
    if (state.loading || !state.nextCursor) return;
    state.cursors = [...state.cursors.slice(0, state.pageIndex + 1), state.nextCursor];
    goToPage(state.pageIndex + 1);
  });
}

async function init() {
  ui.gridAlert.replaceChildren();
  setLoading(true);
  let data;
  try {
    data = await api('/data');
    if (!(data.kind === 'batch' && data.batch) && !(data.kind === 'job' && data.job)) {
      throw new Error('The server sent an unexpected response.');
    }
  } catch (err) {
    if (state.dead) return;
    setLoading(false);
    showGridAlert(`Could not load this review: ${err.message}`, init);
    return;
  }
  state.kind = data.kind;
  renderHeader(data);
  if (data.kind === 'job') {
    ui.itemsHeading.textContent = 'Item';
    setLoading(false);
    state.items = [data.job];
    renderItems(state.items);
    markReady();
    startPolling();
    return;
  }
  ui.progress.hidden = ui.filters.hidden = ui.pager.hidden = false;
  renderManifest(data.manifest);
  applyProgress(data.batch);
  loadPage();
  if (data.batch.status === 'processing') connectEvents();
}

document.body.dataset.state = 'loading';
bindControls();
init();
