// Test doubles for the client tests: a manual clock, a server that implements the wire contract of
// notes/TEAM.md, and just enough window/document/navigator/localStorage for psiturk.js.
import { readFileSync } from 'node:fs';

export const fixture = JSON.parse(readFileSync(new URL('../tests/fixtures/datastring.json', import.meta.url), 'utf8'));

// Lets every pending promise callback run (the fakes answer through promises, never through timers).
export const settle = () => new Promise((resolve) => setImmediate(resolve));

export const clone = (value) => JSON.parse(JSON.stringify(value));

export class FakeClock {
  constructor(start = 1764072000000) {
    this.time = start;
    this.timers = [];
    this.nextId = 1;
    this.now = () => this.time;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.push({ id, at: this.time + (ms || 0), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers = this.timers.filter((timer) => timer.id !== id);
    };
  }

  // Moves time forward, running each timer due on the way (in order) and the promise work it starts.
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.clearTimeout(due.id);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = end;
    await settle();
  }

  async advanceTo(time) {
    await this.advance(time - this.time);
  }
}

const NETWORK = Symbol('network failure');

/*
 * A participant server: GET/PUT /sync, POST /sync/<id>/delta with appends that skip what is held and 409 "gap",
 * /inexp, /quitter, pages and a bonus route. `fail(count, fault, match)` makes the next matching requests
 * answer `fault`: an HTTP status, 'network' (nothing reaches the server), or 'lost-reply' (the server applies
 * the request but the answer never arrives).
 */
export class FakeServer {
  constructor({ participant = fixture, clock = null, secret = null } = {}) {
    this.uniqueId = participant.id;
    this.row = {
      assignmentId: participant.assignmentId, bonus: 0, condition: participant.condition,
      counterbalance: participant.counterbalance, hitId: participant.hitId, workerId: participant.workerId,
    };
    this.stored = null;
    this.secret = secret;
    this.clock = clock;
    this.requests = [];
    this.faults = [];
    this.pages = {};
    this.statusLog = [];
  }

  fail(count, fault, match = () => true) {
    for (let i = 0; i < count; i++) this.faults.push({ fault, match });
  }

  // Returns {status, body} (body a string), or NETWORK when no answer arrives.
  handle(method, url, headers = {}, body = null) {
    const request = { method, url, headers, body, at: this.clock ? this.clock.now() : null };
    this.requests.push(request);
    const index = this.faults.findIndex((f) => f.match(request));
    const fault = index === -1 ? null : this.faults.splice(index, 1)[0].fault;
    if (fault === 'network') return NETWORK;
    if (typeof fault === 'number') return json(fault, { error: 'injected', detail: 'test fault' });
    const answer = this.route(request);
    return fault === 'lost-reply' ? NETWORK : answer;
  }

  route({ method, url, headers, body }) {
    const path = url.split('?')[0];
    const sync = '/sync/' + encodeURIComponent(this.uniqueId);
    if (this.secret && (path.startsWith('/sync/') || path === '/inexp' || path === '/quitter') &&
        headers['X-PsiTurk-Secret'] !== this.secret) {
      return json(403, { error: 'forbidden', detail: 'missing secret' });
    }
    if (method === 'GET' && path === sync) return json(200, this.stored || this.row);
    if (method === 'GET' && path.startsWith('/sync/')) return json(404, { error: 'not_found', detail: 'unknown' });
    if (method === 'PUT' && path === sync) return this.put(JSON.parse(body));
    if (method === 'POST' && path === sync + '/delta') return this.delta(JSON.parse(body));
    if (method === 'POST' && (path === '/inexp' || path === '/quitter')) {
      this.statusLog.push([path, new URLSearchParams(body).get('uniqueId')]);
      return json(200, { status: 'success' });
    }
    if (method === 'GET' && path === 'compute_bonus') return json(200, { bonusComputed: 'success' });
    if (method === 'GET' && path in this.pages) return { status: 200, body: this.pages[path] };
    return json(404, { error: 'not_found', detail: path });
  }

  put(model) {
    if (this.stored && model.data.length < this.stored.data.length) {
      return json(409, { error: 'stale_save', detail: 'shorter', data_length: this.stored.data.length });
    }
    this.stored = model;
    return json(200, { status: 'user data saved' });
  }

  delta(delta) {
    const stored = this.stored || { data: [], eventdata: [], questiondata: {} };
    if (delta.data_from > stored.data.length || delta.eventdata_from > stored.eventdata.length) {
      return json(409, {
        error: 'gap', detail: 'missing entries',
        data_length: stored.data.length, eventdata_length: stored.eventdata.length,
      });
    }
    stored.data = appendNew(stored.data, delta.data_from, delta.data);
    stored.eventdata = appendNew(stored.eventdata, delta.eventdata_from, delta.eventdata);
    Object.assign(stored.questiondata, delta.questiondata);
    Object.assign(stored, delta.attributes);
    this.stored = stored;
    return json(200, {
      status: 'user data saved', data_length: stored.data.length, eventdata_length: stored.eventdata.length,
    });
  }

  deltas() {
    return this.requests.filter((r) => r.url.endsWith('/delta')).map((r) => ({ ...r, json: JSON.parse(r.body) }));
  }

  puts() {
    return this.requests.filter((r) => r.method === 'PUT').map((r) => ({ ...r, json: JSON.parse(r.body) }));
  }
}

// As the real server does: an entry equal to one stored at or after its position is already there, so a
// repeated delta adds nothing, and an entry the server added itself (a "resumed" event) hides nothing.
function appendNew(stored, from, incoming) {
  const held = stored.slice(from).map((entry) => JSON.stringify(entry));
  const kept = incoming.filter((entry) => {
    const index = held.indexOf(JSON.stringify(entry));
    if (index !== -1) held.splice(index, 1);
    return index === -1;
  });
  return [...stored, ...kept];
}

function json(status, value) {
  return { status, body: JSON.stringify(value) };
}

export function fakeFetch(server) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    calls.push({ url, init });
    const answer = server.handle(init.method || 'GET', url, init.headers || {}, init.body ?? null);
    if (answer === NETWORK) throw new TypeError('Failed to fetch');
    return { status: answer.status, ok: answer.status < 300, text: async () => answer.body };
  };
  fetch.calls = calls;
  return fetch;
}

// Synchronous requests only, which is all the classic constructor makes.
export function fakeXMLHttpRequest(server) {
  return class FakeXMLHttpRequest {
    constructor() {
      this.headers = {};
    }
    open(method, url, async) {
      Object.assign(this, { method, url, async });
    }
    setRequestHeader(name, value) {
      this.headers[name] = value;
    }
    send(body = null) {
      if (this.async !== false) throw new Error('the fake only does synchronous requests');
      const answer = server.handle(this.method, this.url, this.headers, body);
      if (answer === NETWORK) throw new Error('NetworkError');
      this.status = answer.status;
      this.responseText = answer.body;
    }
  };
}

export class FakeStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

class FakeTarget {
  constructor() {
    this.listeners = {};
  }
  addEventListener(type, fn) {
    const list = (this.listeners[type] ||= []);
    if (!list.includes(fn)) list.push(fn);
  }
  removeEventListener(type, fn) {
    this.listeners[type] = (this.listeners[type] || []).filter((f) => f !== fn);
  }
  dispatch(type, event = {}) {
    event.type = type;
    return (this.listeners[type] || []).map((fn) => fn(event));
  }
}

class FakeElement {
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.children = [];
    this.attributes = {};
    this.style = {};
    this.innerHTML = '';
    this.textContent = '';
  }
  setAttribute(name, value) {
    this.attributes[name] = value;
  }
  appendChild(child) {
    this.children.push(child);
    return child;
  }
}

// A clicked element inside `.instructionsnav`, answering closest() as the browser would.
export function navButton(kind) {
  return { closest: (selector) => (selector === '.instructionsnav .' + kind ? {} : null) };
}

export function fakeBrowser({ width = 1280, height = 800, userAgent = fixture.useragent, beacons = true } = {}) {
  const window = new FakeTarget();
  Object.assign(window, { innerWidth: width, innerHeight: height, location: { href: '/exp' } });
  window.Image = class {};
  const document = new FakeTarget();
  document.visibilityState = 'visible';
  document.body = new FakeElement('body');
  document.createElement = (tag) => new FakeElement(tag);
  const sent = [];
  const navigator = { userAgent, sentBeacons: sent };
  if (beacons) {
    navigator.sendBeacon = (url, blob) => {
      sent.push({ url, blob });
      return true;
    };
  }
  return { window, document, navigator };
}

// Everything psiturk.js reads from its environment, wired to one fake server and clock.
export function harness({ server, clock = new FakeClock(), storage = new FakeStorage(), browser } = {}) {
  server = server || new FakeServer({ clock });
  server.clock = server.clock || clock;
  browser = browser || fakeBrowser();
  const fetch = fakeFetch(server);
  const options = {
    ...browser, fetch, storage, now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    random: () => 1, XMLHttpRequest: fakeXMLHttpRequest(server),
  };
  return { server, clock, storage, browser, fetch, options };
}

// Hands beacons to the server as the browser would after the page is gone.
export async function deliverBeacons(server, navigator) {
  for (const { url, blob } of navigator.sentBeacons.splice(0)) {
    server.handle('POST', url, { 'Content-Type': blob.type }, await blob.text());
  }
}
