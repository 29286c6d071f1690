/*
 * psiturk.js: the participant's side of psiturk-async.
 *
 * A classic script (no imports or exports, no dependencies) so that old psiTurk 3 pages can load it with a plain
 * <script> tag; psiturk.mjs re-exports it for module code. It defines globalThis.PsiTurk (the psiTurk 3
 * constructor, which loads saved state synchronously) and globalThis.createPsiTurk (the same object, loaded
 * with fetch). The wire contract it speaks is in notes/TEAM.md.
 */
(function () {
  'use strict';

  const LOG_KEYS = ['data', 'eventdata', 'questiondata'];
  const FORM = 'application/x-www-form-urlencoded;charset=UTF-8';
  const JSON_TYPE = 'application/json';
  // A save that keeps being told "gap" is talking to a server that disagrees with itself; give up rather than loop.
  const GAP_LIMIT = 3;
  const SAVING_TEXT = 'Saving your data\u2026';
  const RETRYING_TEXT = 'Saving your data\u2026 The connection is slow, so this may take a moment. ' +
    'Please keep this page open.';
  const LEAVE_TEXT = 'If you leave or reload this page now, you will leave the study. Are you sure?';

  const SETTINGS = {
    incremental: true, // POST /sync/<id>/delta; false sends the whole model with PUT /sync/<id> as psiTurk did
    retries: 5, // retries of one saveData() before its error callback runs (completeHIT never gives up)
    retryBase: 500, // ms before the first retry; doubles after each failure...
    retryCap: 10000, // ...up to this
    requestTimeout: 20000, // ms before a request with no answer counts as a network error
    persistDelay: 1000, // ms between writes of the outbox while data is recorded
  };

  // Old task.js code hands these around unbound (e.g. as click handlers), which psiTurk's closures allowed.
  const PUBLIC_METHODS = ['preloadPages', 'getPage', 'showPage', 'preloadImages', 'recordTrialData',
    'recordUnstructuredData', 'getTrialData', 'getEventData', 'getQuestionData', 'saveData', 'computeBonus',
    'startTask', 'finishInstructions', 'teardownTask', 'completeHIT', 'doInstructions', 'getInstructionIndicator'];

  const noop = () => {};

  // Marks a promise as handled so callers who ignore it (as psiTurk 3 code does) get no console noise;
  // callers who await it still see the rejection.
  function quiet(promise) {
    promise.catch(noop);
    return promise;
  }

  function makeEnv(options) {
    const g = globalThis;
    const pick = (name, fallback) => (options[name] !== undefined ? options[name] : fallback);
    return {
      window: pick('window', g.window),
      document: pick('document', g.document),
      navigator: pick('navigator', g.navigator),
      storage: pick('storage', defaultStorage()),
      fetch: pick('fetch', g.fetch && g.fetch.bind(g)),
      XMLHttpRequest: pick('XMLHttpRequest', g.XMLHttpRequest),
      Blob: pick('Blob', g.Blob),
      now: pick('now', () => Date.now()),
      setTimeout: pick('setTimeout', (fn, ms) => g.setTimeout(fn, ms)),
      clearTimeout: pick('clearTimeout', (id) => g.clearTimeout(id)),
      random: pick('random', Math.random),
    };
  }

  function defaultStorage() {
    // Touching localStorage throws in some sandboxed frames and privacy modes; saving must work without it.
    try {
      return globalThis.localStorage || null;
    } catch (err) {
      return null;
    }
  }

  function settingsFrom(options) {
    const settings = {};
    for (const key of Object.keys(SETTINGS)) settings[key] = options[key] !== undefined ? options[key] : SETTINGS[key];
    return settings;
  }

  class RequestError extends Error {
    constructor(message, answer) {
      const body = answer.body && typeof answer.body === 'object' ? answer.body : {};
      super(message + (answer.status ? ' (HTTP ' + answer.status + ')' : ': no answer from the server'));
      this.name = 'RequestError';
      this.status = answer.status;
      this.code = body.error;
      this.detail = body.detail;
      this.cause = answer.error;
    }
  }

  // Network failures, server errors, timeouts and throttling pass; other answers will not change on retry.
  function isTransient(status) {
    return status === 0 || status >= 500 || status === 408 || status === 429;
  }

  function isOk(answer) {
    return answer.status >= 200 && answer.status < 300;
  }

  function parseBody(text) {
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch (err) {
      return text;
    }
  }

  // The taskdata model: psiTurk 3's Backbone model, reduced to the get/set/toJSON that task.js code uses.
  class TaskData {
    constructor(id, onChange) {
      this.id = id;
      this.attributes = {
        condition: 0, counterbalance: 0, assignmentId: 0, workerId: 0, hitId: 0, currenttrial: 0, bonus: 0,
        data: [], questiondata: {}, eventdata: [], useragent: '', mode: '', id: id,
      };
      this._onChange = onChange;
    }

    get(key) {
      return this.attributes[key];
    }

    set(key, value) {
      if (key && typeof key === 'object') Object.assign(this.attributes, key);
      else this.attributes[key] = value;
      this._onChange();
      return this;
    }

    toJSON() {
      return Object.assign({}, this.attributes);
    }
  }

  /*
   * Incremental saving. `ack` is what the server is known to hold: the lengths of the two logs and the JSON of
   * each question field and top-level attribute as last sent. Everything else is derived from the model, so
   * task code that changes taskdata directly is still saved.
   */
  function emptyAck() {
    return { dataLength: 0, eventLength: 0, questions: {}, attributes: {} };
  }

  function attributesOf(model) {
    const out = {};
    for (const key of Object.keys(model)) if (!LOG_KEYS.includes(key)) out[key] = model[key];
    return out;
  }

  function jsonOfEach(values) {
    const out = {};
    for (const key of Object.keys(values)) out[key] = JSON.stringify(values[key]);
    return out;
  }

  // The ack after the server has stored `model` as its whole datastring (a load, or a full PUT).
  function ackOfStored(model) {
    // A new participant's GET /sync answers only ids and condition: nothing is stored yet.
    if (!model || !Array.isArray(model.data)) return emptyAck();
    return {
      dataLength: model.data.length,
      eventLength: Array.isArray(model.eventdata) ? model.eventdata.length : 0,
      questions: jsonOfEach(model.questiondata || {}),
      attributes: jsonOfEach(attributesOf(model)),
    };
  }

  // Fields whose JSON differs from what was sent, as copies (so later changes to them count as new changes).
  function changedFields(values, sentJson) {
    let out = null;
    for (const key of Object.keys(values)) {
      const json = JSON.stringify(values[key]);
      if (json !== undefined && json !== sentJson[key]) (out = out || {})[key] = JSON.parse(json);
    }
    return out;
  }

  function pendingDelta(model, ack) {
    const data = model.data.slice(ack.dataLength);
    const eventdata = model.eventdata.slice(ack.eventLength);
    const questiondata = changedFields(model.questiondata, ack.questions);
    const attributes = changedFields(attributesOf(model), ack.attributes);
    if (!data.length && !eventdata.length && !questiondata && !attributes) return null;
    return {
      data_from: ack.dataLength, data: data,
      eventdata_from: ack.eventLength, eventdata: eventdata,
      questiondata: questiondata || {}, attributes: attributes || {},
    };
  }

  function ackDelta(ack, delta) {
    ack.dataLength = delta.data_from + delta.data.length;
    ack.eventLength = delta.eventdata_from + delta.eventdata.length;
    Object.assign(ack.questions, jsonOfEach(delta.questiondata));
    Object.assign(ack.attributes, jsonOfEach(delta.attributes));
  }

  // After a 409 "gap" the server holds less than we believed; resend from its lengths.
  function rewind(ack, reply) {
    const length = (n) => (Number.isInteger(n) && n >= 0 ? n : 0);
    ack.dataLength = Math.min(ack.dataLength, length(reply.data_length));
    ack.eventLength = Math.min(ack.eventLength, length(reply.eventdata_length));
    // A server that lost log entries may have lost fields too, and they are small: send them all again.
    ack.questions = {};
    ack.attributes = {};
  }

  /*
   * The outbox: the pending delta, kept in localStorage so that a reload or a closed tab loses nothing.
   * After a reload it is laid over the state the server returned, skipping what the server already holds.
   */
  function readOutbox(storage, key) {
    if (!storage) return null;
    try {
      const box = JSON.parse(storage.getItem(key));
      const valid = box && Array.isArray(box.data) && Array.isArray(box.eventdata) &&
        Number.isInteger(box.data_from) && Number.isInteger(box.eventdata_from);
      return valid ? box : null;
    } catch (err) {
      return null;
    }
  }

  function writeOutbox(storage, key, delta) {
    if (!storage) return;
    try {
      if (delta) storage.setItem(key, JSON.stringify(delta));
      else storage.removeItem(key);
    } catch (err) {
      // Quota exceeded or storage disabled: the data is still in memory and is still being sent.
    }
  }

  // Outbox entries the server already holds from `from` on are dropped, the rest appended. Content decides, as on
  // the server, not position: the server adds entries of its own (a "resumed" event when a participant returns).
  function mergeLog(stored, from, pending) {
    const held = stored.slice(from).map((entry) => JSON.stringify(entry));
    const merged = stored.slice();
    for (const entry of pending) {
      const index = held.indexOf(JSON.stringify(entry));
      if (index === -1) merged.push(entry);
      else held.splice(index, 1);
    }
    return merged;
  }

  function reapplyOutbox(model, box) {
    model.data = mergeLog(model.data, box.data_from, box.data);
    model.eventdata = mergeLog(model.eventdata, box.eventdata_from, box.eventdata);
    Object.assign(model.questiondata, box.questiondata || {});
    Object.assign(model, box.attributes || {});
  }

  // jQuery's .html(), which psiTurk used, ran inline scripts of a page; innerHTML does not, so re-create them.
  function activateScripts(doc, root) {
    if (typeof root.querySelectorAll !== 'function') return;
    for (const old of Array.from(root.querySelectorAll('script'))) {
      const fresh = doc.createElement('script');
      for (const attr of Array.from(old.attributes || [])) fresh.setAttribute(attr.name, attr.value);
      fresh.text = old.text;
      old.replaceWith(fresh);
    }
  }

  // The instruction pager behind doInstructions(), recording the same trial rows as psiTurk 3.
  class InstructionDeck {
    constructor(psiturk, pages, done) {
      if (!pages || !pages.length) throw new Error('doInstructions needs at least one page');
      this.psiturk = psiturk;
      this.pages = pages;
      this.done = done;
      this.index = 0;
      this.onClick = (event) => this.click(event);
      psiturk.recordTrialData({ phase: 'INSTRUCTIONS', templates: pages, action: 'Begin' });
      this.show();
      const doc = psiturk._env.document;
      if (doc) doc.addEventListener('click', this.onClick);
    }

    show() {
      this.shownAt = this.psiturk._env.now();
      this.psiturk.showPage(this.pages[this.index]);
    }

    // Delegated, like psiTurk's handlers on .instructionsnav, so buttons on each newly shown page work.
    click(event) {
      const target = event && event.target;
      if (!target || typeof target.closest !== 'function') return;
      if (target.closest('.instructionsnav .continue')) this.turn(1);
      else if (this.index > 0 && target.closest('.instructionsnav .previous')) this.turn(-1);
    }

    turn(step) {
      const last = this.index === this.pages.length - 1;
      const action = step < 0 ? 'PrevPage' : last ? 'FinishInstructions' : 'NextPage';
      this.psiturk.recordTrialData({
        phase: 'INSTRUCTIONS', template: this.pages[this.index], indexOf: this.index, action: action,
        viewTime: this.psiturk._env.now() - this.shownAt,
      });
      if (action !== 'FinishInstructions') {
        this.index += step;
        this.show();
        return;
      }
      const doc = this.psiturk._env.document;
      if (doc) doc.removeEventListener('click', this.onClick);
      this.psiturk.finishInstructions();
      if (this.done) this.done();
    }

    indicator() {
      return {
        currently_viewing: { indexOf: this.index, template: this.pages[this.index] },
        instruction_deck: { total_pages: this.pages.length, templates: this.pages },
      };
    }
  }

  class Session {
    constructor(uniqueId, adServerLoc, mode, options) {
      options = options || {};
      this._env = makeEnv(options);
      this._settings = settingsFrom(options);
      this._secret = options.secret || null;
      this._syncUrl = '/sync/' + encodeURIComponent(uniqueId);
      this._outboxKey = 'psiturk-outbox:' + uniqueId;
      this._ack = emptyAck();
      this._saveChain = Promise.resolve();
      this._persistTimer = null;
      this._resizeTimer = null;
      this._instructions = null;
      this._completing = null;
      this._note = null;
      this.adServerLoc = adServerLoc || '/complete';
      this.mode = mode || 'live';
      this.pages = {};
      this.taskdata = new TaskData(uniqueId, () => this._schedulePersist());
      const navigator = this._env.navigator;
      this.taskdata.attributes.useragent = (navigator && navigator.userAgent) || '';
      this.taskdata.attributes.mode = this.mode;
      this._onBeforeUnload = (event) => this._leaving(event);
      for (const name of PUBLIC_METHODS) this[name] = this[name].bind(this);
    }

    // ---- start-up

    // psiTurk 3's constructor blocked on GET /sync, and task.js code relies on state being there at once.
    _loadSync() {
      const XHR = this._env.XMLHttpRequest;
      try {
        const xhr = new XHR();
        xhr.open('GET', this._syncUrl, false);
        if (this._secret) xhr.setRequestHeader('X-PsiTurk-Secret', this._secret);
        xhr.send();
        if (xhr.status === 200) return JSON.parse(xhr.responseText);
        console.warn('psiturk: could not load saved state (HTTP ' + xhr.status + '); starting fresh');
      } catch (err) {
        console.warn('psiturk: could not load saved state; starting fresh', err);
      }
      return null;
    }

    // Without the stored state, new rows would be sent at positions the server already holds and be dropped,
    // so the module path fails loudly instead of starting fresh.
    async _loadAsync() {
      const answer = await this._call('GET', this._syncUrl, null, null, this._settings.retries);
      if (answer.status === 200 && answer.body && typeof answer.body === 'object') return answer.body;
      throw new RequestError('psiturk: could not load saved state', answer);
    }

    _start(stored) {
      const model = this.taskdata.attributes;
      if (stored) {
        for (const key of Object.keys(stored)) {
          const wanted = key === 'questiondata' ? 'object' : LOG_KEYS.includes(key) ? 'array' : null;
          const value = stored[key];
          if (wanted === 'array' && !Array.isArray(value)) continue;
          if (wanted === 'object' && (!value || typeof value !== 'object')) continue;
          model[key] = value;
        }
      }
      this._ack = ackOfStored(stored);
      const box = readOutbox(this._env.storage, this._outboxKey);
      if (box) reapplyOutbox(model, box);
      this._addEvent('initialized', null);
      this._addEvent('window_resize', this._windowSize());
      this._listen();
      if (box) this.saveData(); // what an earlier page left unsaved goes out now
    }

    _listen() {
      const win = this._env.window;
      const doc = this._env.document;
      if (win && win.addEventListener) {
        win.addEventListener('resize', () => {
          this._env.clearTimeout(this._resizeTimer);
          this._resizeTimer = this._env.setTimeout(() => {
            this._addEvent('window_resize', this._windowSize());
          }, 200);
        });
        win.addEventListener('blur', () => this._addEvent('focus', 'off'));
        win.addEventListener('focus', () => this._addEvent('focus', 'on'));
        win.addEventListener('pagehide', () => this._flushAtUnload());
      }
      // Mobile browsers often kill a hidden page without a pagehide, so hiding saves too. It is an ordinary,
      // queued save and not a beacon: the page may live on, and a late beacon could undo a newer save's fields.
      if (doc && doc.addEventListener) {
        doc.addEventListener('visibilitychange', () => {
          if (doc.visibilityState === 'hidden' && this._persistNow()) this._queueSave(this._settings.retries, null);
        });
      }
    }

    _windowSize() {
      const win = this._env.window;
      return win ? [win.innerWidth, win.innerHeight] : null;
    }

    _addEvent(eventtype, value) {
      const events = this.taskdata.attributes.eventdata;
      const timestamp = this._env.now();
      const previous = events[events.length - 1];
      const interval = previous ? timestamp - previous.timestamp : 0;
      events.push({ eventtype: eventtype, value: value, timestamp: timestamp, interval: interval });
      this._schedulePersist();
    }

    // ---- pages

    preloadPages(names) {
      return Promise.all(names.map(async (name) => {
        const answer = await this._send('GET', name, null, null, { raw: true });
        if (!isOk(answer)) throw new RequestError('psiturk: could not load page ' + name, answer);
        this.pages[name] = answer.body || '';
      }));
    }

    getPage(name) {
      if (!Object.prototype.hasOwnProperty.call(this.pages, name)) {
        throw new Error('Attemping to load page before preloading: ' + name);
      }
      return this.pages[name];
    }

    showPage(name) {
      const doc = this._env.document;
      doc.body.innerHTML = this.getPage(name);
      activateScripts(doc, doc.body);
    }

    preloadImages(sources) {
      const Image = this._env.window && this._env.window.Image;
      if (!Image) return [];
      return sources.map((src) => {
        const image = new Image();
        image.src = src;
        return image;
      });
    }

    // ---- recording

    recordTrialData(trialdata) {
      const model = this.taskdata.attributes;
      model.data.push({
        uniqueid: this.taskdata.id, current_trial: model.currenttrial, dateTime: this._env.now(), trialdata: trialdata,
      });
      model.currenttrial += 1;
      this._schedulePersist();
    }

    recordUnstructuredData(field, value) {
      this.taskdata.attributes.questiondata[field] = value;
      this._schedulePersist();
    }

    getTrialData() {
      return this.taskdata.attributes.data;
    }

    getEventData() {
      return this.taskdata.attributes.eventdata;
    }

    getQuestionData() {
      return this.taskdata.attributes.questiondata;
    }

    // ---- saving

    /*
     * Sends what is new (or, with incremental: false, everything) and resolves once the server has it.
     * Callbacks get psiTurk 3's Backbone order: success(taskdata, reply), error(taskdata, error).
     */
    saveData(callbacks) {
      callbacks = callbacks || {};
      const saved = this._queueSave(this._settings.retries, null);
      saved.then(
        (reply) => callbacks.success && callbacks.success(this.taskdata, reply),
        (err) => callbacks.error && callbacks.error(this.taskdata, err),
      );
      return saved;
    }

    // Saves run one after another, so a save never races another's acknowledgement.
    _queueSave(retries, onRetry) {
      const run = this._saveChain.catch(noop).then(() => this._drain(retries, onRetry));
      this._saveChain = run;
      return quiet(run);
    }

    // Sends until nothing is pending; recomputes the delta each round so rows recorded meanwhile ride along.
    async _drain(retries, onRetry) {
      let reply = null;
      let failures = 0;
      let gaps = 0;
      for (;;) {
        const delta = this._persistNow();
        if (!delta) {
          const lengths = { data_length: this._ack.dataLength, eventdata_length: this._ack.eventLength };
          return reply || Object.assign({ status: 'user data saved' }, lengths);
        }
        const full = !this._settings.incremental;
        const text = JSON.stringify(full ? this.taskdata.toJSON() : delta);
        const answer = full ?
          await this._send('PUT', this._syncUrl, text, JSON_TYPE) :
          await this._send('POST', this._syncUrl + '/delta', text, JSON_TYPE);
        if (isOk(answer)) {
          if (full) this._ack = ackOfStored(JSON.parse(text));
          else ackDelta(this._ack, delta);
          reply = answer.body;
          failures = 0;
          continue;
        }
        const body = answer.body || {};
        if (answer.status === 409 && body.error === 'gap' && gaps < GAP_LIMIT) {
          gaps += 1;
          rewind(this._ack, body);
          continue;
        }
        if (!isTransient(answer.status) || failures >= retries) throw new RequestError('psiturk: save failed', answer);
        if (onRetry) onRetry(answer);
        await this._sleep(this._backoff(failures));
        failures += 1;
      }
    }

    // Writes the pending delta to the outbox now (or clears it) and returns it.
    _persistNow() {
      if (this._persistTimer !== null) {
        this._env.clearTimeout(this._persistTimer);
        this._persistTimer = null;
      }
      const delta = pendingDelta(this.taskdata.attributes, this._ack);
      writeOutbox(this._env.storage, this._outboxKey, delta);
      return delta;
    }

    // Throttled rather than per record: the outbox is rewritten whole, and trials may come many per second.
    _schedulePersist() {
      if (this._persistTimer !== null || !this._env.storage) return;
      this._persistTimer = this._env.setTimeout(() => {
        this._persistTimer = null;
        this._persistNow();
      }, this._settings.persistDelay);
    }

    // The page is going away: keep the outbox for a return, and hand what is pending to the browser to deliver.
    // The server skips what it already holds, so the beacon racing a save still in flight stores nothing twice.
    _flushAtUnload() {
      const delta = this._persistNow();
      if (!delta) return;
      const full = !this._settings.incremental;
      const text = JSON.stringify(full ? this.taskdata.toJSON() : delta);
      if (full) this._sendAtUnload('PUT', this._syncUrl, text, JSON_TYPE);
      else this._sendAtUnload('POST', this._syncUrl + '/delta', text, 'text/plain');
    }

    // sendBeacon cannot carry the secret header, so a page given the secret uses a keepalive fetch instead.
    _sendAtUnload(method, url, text, type) {
      const navigator = this._env.navigator;
      const Blob = this._env.Blob;
      if (method === 'POST' && !this._secret && navigator && navigator.sendBeacon && Blob) {
        try {
          if (navigator.sendBeacon(url, new Blob([text], { type: type }))) return;
        } catch (err) {
          // fall through to fetch
        }
      }
      if (!this._env.fetch) return;
      const init = {
        method: method, body: text, headers: this._headers(type), credentials: 'same-origin', keepalive: true,
      };
      try {
        this._env.fetch(url, init).catch(noop);
      } catch (err) {
        // The page is going away; the outbox still holds the data for the next visit.
      }
    }

    _backoff(failures) {
      const ceiling = Math.min(this._settings.retryCap, this._settings.retryBase * Math.pow(2, failures));
      // Jitter spreads out the retries of many participants after the same outage.
      return Math.round(ceiling * (0.5 + 0.5 * this._env.random()));
    }

    _sleep(ms) {
      return new Promise((resolve) => this._env.setTimeout(resolve, ms));
    }

    // ---- HTTP

    _headers(contentType) {
      const headers = {};
      if (contentType) headers['Content-Type'] = contentType;
      if (this._secret) headers['X-PsiTurk-Secret'] = this._secret;
      return headers;
    }

    // One request. Resolves {status, body} for any HTTP answer, and {status: 0, error} when none came.
    async _send(method, url, body, contentType, opts) {
      const raw = opts && opts.raw;
      const env = this._env;
      const controller = typeof AbortController === 'function' ? new AbortController() : null;
      let timer = null;
      const timeout = new Promise((resolve, reject) => {
        timer = env.setTimeout(() => {
          if (controller) controller.abort();
          reject(new Error('request timed out'));
        }, this._settings.requestTimeout);
      });
      const hasBody = body !== null && body !== undefined;
      const init = { method: method, headers: this._headers(hasBody ? contentType : null), credentials: 'same-origin' };
      if (hasBody) init.body = body;
      if (controller) init.signal = controller.signal;
      try {
        const response = await Promise.race([env.fetch(url, init), timeout]);
        const text = await Promise.race([response.text(), timeout]);
        return { status: response.status, body: raw ? text : parseBody(text) };
      } catch (err) {
        return { status: 0, body: null, error: err };
      } finally {
        env.clearTimeout(timer);
      }
    }

    // A request retried with backoff while the failure is transient.
    async _call(method, url, body, contentType, retries) {
      for (let failures = 0; ; failures++) {
        const answer = await this._send(method, url, body, contentType);
        if (!isTransient(answer.status) || failures >= retries) return answer;
        await this._sleep(this._backoff(failures));
      }
    }

    _postForm(url, retries) {
      const form = 'uniqueId=' + encodeURIComponent(this.taskdata.id);
      return this._call('POST', url, form, FORM, retries);
    }

    // ---- task flow

    computeBonus(url, callback) {
      const separator = url.indexOf('?') === -1 ? '?' : '&';
      const target = url + separator + 'uniqueId=' + encodeURIComponent(this.taskdata.id);
      return quiet(this._send('GET', target, null, null).then((answer) => {
        if (!isOk(answer)) throw new RequestError('psiturk: computeBonus failed', answer);
        if (callback) callback(answer.body);
        return answer.body;
      }));
    }

    startTask() {
      this.saveData();
      quiet(this._postForm('/inexp', this._settings.retries).then((answer) => {
        if (!isOk(answer)) console.warn('psiturk: POST /inexp failed', answer.status);
      }));
      const win = this._env.window;
      if (this.mode !== 'debug' && win && win.addEventListener) {
        win.addEventListener('beforeunload', this._onBeforeUnload);
      }
    }

    // psiTurk 3 saved and marked the participant as a quitter on leaving; the server lets a return resume.
    _leaving(event) {
      this.saveData();
      this._sendAtUnload('POST', '/quitter', 'uniqueId=' + encodeURIComponent(this.taskdata.id), FORM);
      if (event) {
        if (event.preventDefault) event.preventDefault();
        event.returnValue = LEAVE_TEXT;
      }
      return LEAVE_TEXT;
    }

    finishInstructions() {
      this.startTask();
    }

    teardownTask() {
      const win = this._env.window;
      if (win && win.removeEventListener) win.removeEventListener('beforeunload', this._onBeforeUnload);
    }

    // Leaves for the ad server only once every change is acknowledged: the last save is the one most often lost.
    completeHIT() {
      if (this._completing) return this._completing;
      this.teardownTask();
      this._showNote(SAVING_TEXT);
      this._completing = this._queueSave(Infinity, () => this._showNote(RETRYING_TEXT))
        .catch((err) => console.error('psiturk: data could not be saved; finishing anyway', err))
        .then(() => {
          const query = '?uniqueId=' + encodeURIComponent(this.taskdata.id) + '&mode=' + encodeURIComponent(this.mode);
          this._env.window.location.href = this.adServerLoc + query;
        });
      return this._completing;
    }

    _showNote(text) {
      const doc = this._env.document;
      if (!doc || !doc.body) return;
      if (!this._note) {
        this._note = doc.createElement('div');
        this._note.id = 'psiturk-saving';
        this._note.setAttribute('role', 'status');
        this._note.style.cssText = 'position:fixed;inset:0;z-index:2147483647;display:flex;align-items:center;' +
          'justify-content:center;padding:2em;background:#fff;color:#000;font:1.5em sans-serif;text-align:center';
        doc.body.appendChild(this._note);
      }
      this._note.textContent = text;
    }

    doInstructions(pages, callback) {
      this._instructions = new InstructionDeck(this, pages, callback);
    }

    getInstructionIndicator() {
      return this._instructions ? this._instructions.indicator() : undefined;
    }
  }

  // psiTurk 3's constructor: `new PsiTurk(uniqueId, adServerLoc, mode[, options])`, ready on return.
  // Also callable without `new`, as psiTurk's own docs show it.
  function PsiTurk(uniqueId, adServerLoc, mode, options) {
    const psiturk = new Session(uniqueId, adServerLoc, mode, options);
    psiturk._start(psiturk._loadSync());
    return psiturk;
  }
  PsiTurk.prototype = Session.prototype;

  // The module path: `await createPsiTurk({uniqueId, adServerLoc, mode, secret, ...options})`.
  async function createPsiTurk(options) {
    options = options || {};
    const psiturk = new Session(options.uniqueId, options.adServerLoc, options.mode, options);
    psiturk._start(await psiturk._loadAsync());
    return psiturk;
  }

  globalThis.PsiTurk = PsiTurk;
  globalThis.createPsiTurk = createPsiTurk;
})();
