// Saving: deltas, retries with backoff, the 409 "gap" resend, the localStorage outbox across reloads,
// the unload flush, and completeHIT waiting for the last acknowledgement.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPsiTurk } from './psiturk.mjs';
import { FakeServer, deliverBeacons, fakeBrowser, fixture, harness } from './fakes.mjs';

const OUTBOX = 'psiturk-outbox:' + fixture.id;
const isDelta = (request) => request.url.endsWith('/delta');

function open(h, extra = {}) {
  return createPsiTurk({ uniqueId: fixture.id, adServerLoc: '/complete', mode: 'sandbox', ...h.options, ...extra });
}

// The same participant opening the page again: same server, storage and clock, a fresh window.
function reload(h, extra = {}) {
  const again = harness({ server: h.server, clock: h.clock, storage: h.storage });
  return { h: again, opening: open(again, extra) };
}

function record(psiturk, ...names) {
  for (const name of names) psiturk.recordTrialData({ name });
}

const names = (rows) => rows.map((row) => row.trialdata.name);
const outbox = (h) => JSON.parse(h.storage.getItem(OUTBOX));

test('each delta carries only what is new since the last acknowledged save', async () => {
  const h = harness();
  const psiturk = await open(h);
  record(psiturk, 'a', 'b', 'c');
  await psiturk.saveData();
  record(psiturk, 'd', 'e');
  psiturk.recordUnstructuredData('age', '31');
  await psiturk.saveData();
  const [, second] = h.server.deltas().map((d) => d.json);
  assert.deepEqual(second, {
    data_from: 3, data: psiturk.getTrialData().slice(3),
    eventdata_from: 2, eventdata: [],
    questiondata: { age: '31' }, attributes: { currenttrial: 5 },
  });
  assert.deepEqual(names(h.server.stored.data), ['a', 'b', 'c', 'd', 'e']);
});

test('a save with nothing new succeeds without a request', async () => {
  const h = harness();
  const psiturk = await open(h);
  await psiturk.saveData();
  const before = h.server.requests.length;
  let success = 0;
  const reply = await psiturk.saveData({ success: () => success++ });
  assert.equal(h.server.requests.length, before);
  assert.equal(success, 1);
  assert.equal(reply.status, 'user data saved');
});

test('saves called together share one request and run one at a time', async () => {
  const h = harness();
  const psiturk = await open(h);
  record(psiturk, 'a');
  const first = psiturk.saveData();
  record(psiturk, 'b');
  const second = psiturk.saveData();
  await Promise.all([first, second]);
  assert.equal(h.server.deltas().length, 1);
  assert.deepEqual(names(h.server.stored.data), ['a', 'b']);
});

test('a delta whose reply was lost is sent again and stored once', async () => {
  const h = harness();
  const psiturk = await open(h);
  record(psiturk, 'a', 'b');
  h.server.fail(1, 'lost-reply', isDelta);
  let successes = 0;
  const saving = psiturk.saveData({ success: () => successes++ });
  await h.clock.advance(1000);
  await saving;
  const [sent, resent] = h.server.deltas();
  assert.equal(resent.body, sent.body, 'the retry repeats the same delta');
  assert.deepEqual(names(h.server.stored.data), ['a', 'b']);
  assert.equal(h.server.stored.eventdata.length, 2);
  assert.equal(successes, 1);
});

test('after a 409 gap the client resends from the lengths the server reports', async () => {
  const h = harness();
  const psiturk = await open(h);
  record(psiturk, 'a', 'b', 'c');
  psiturk.recordUnstructuredData('age', '31');
  await psiturk.saveData();
  // The server lost the end of what it had acknowledged (say, restored from an older backup).
  h.server.stored.data.length = 1;
  h.server.stored.eventdata.length = 1;
  h.server.stored.questiondata = {};
  record(psiturk, 'd');
  await psiturk.saveData();
  const [, refused, resent] = h.server.deltas();
  assert.equal(refused.json.data_from, 3);
  assert.equal(resent.json.data_from, 1);
  assert.equal(resent.json.eventdata_from, 1);
  assert.deepEqual(names(h.server.stored.data), ['a', 'b', 'c', 'd']);
  assert.deepEqual(h.server.stored.eventdata, psiturk.getEventData());
  assert.deepEqual(h.server.stored.questiondata, { age: '31' });
});

test('5xx answers and network errors are retried with doubling delays up to the cap', async () => {
  const h = harness();
  const psiturk = await open(h, { retries: 10, retryBase: 500, retryCap: 4000 });
  record(psiturk, 'a');
  h.server.fail(3, 503, isDelta);
  h.server.fail(3, 'network', isDelta);
  const start = h.clock.now();
  const saving = psiturk.saveData();
  await h.clock.advance(60000);
  await saving;
  const times = h.server.deltas().map((d) => d.at - start);
  assert.deepEqual(times, [0, 500, 1500, 3500, 7500, 11500, 15500]);
  assert.deepEqual(names(h.server.stored.data), ['a']);
});

test('backoff delays are jittered down to half', async () => {
  const h = harness();
  const psiturk = await open(h, { random: () => 0, retryBase: 500 });
  record(psiturk, 'a');
  h.server.fail(2, 500, isDelta);
  const start = h.clock.now();
  const saving = psiturk.saveData();
  await h.clock.advance(5000);
  await saving;
  assert.deepEqual(h.server.deltas().map((d) => d.at - start), [0, 250, 750]);
});

test('a save that keeps failing gives up after its retries and keeps the data in the outbox', async () => {
  const h = harness();
  const psiturk = await open(h, { retries: 2 });
  record(psiturk, 'a');
  h.server.fail(10, 'network', isDelta);
  let failure = null;
  const saving = psiturk.saveData({ error: (taskdata, err) => (failure = err) });
  await h.clock.advance(60000);
  await assert.rejects(saving, /save failed/);
  assert.equal(h.server.deltas().length, 3, 'one try and two retries');
  assert.equal(failure.status, 0);
  assert.deepEqual(names(outbox(h).data), ['a']);
});

test('client errors other than a gap are not retried', async () => {
  const h = harness();
  const psiturk = await open(h);
  record(psiturk, 'a');
  h.server.fail(1, 403, isDelta);
  let failure = null;
  await assert.rejects(psiturk.saveData({ error: (taskdata, err) => (failure = err) }));
  assert.equal(h.server.deltas().length, 1);
  assert.equal(failure.status, 403);
  assert.equal(failure.code, 'injected');
});

test('a request with no answer times out and is retried', async () => {
  const h = harness();
  let hung = 0;
  const fetch = (url, init) => (url.endsWith('/delta') && hung++ === 0 ? new Promise(() => {}) : h.fetch(url, init));
  const psiturk = await open(h, { requestTimeout: 5000, fetch });
  record(psiturk, 'a');
  const saving = psiturk.saveData();
  await h.clock.advance(4999);
  assert.equal(h.server.stored, null);
  await h.clock.advance(2000);
  await saving;
  assert.deepEqual(names(h.server.stored.data), ['a']);
});

test('unsaved changes in the outbox are re-applied and sent after a reload', async () => {
  const h = harness();
  const first = await open(h, { retries: 0 });
  record(first, 'a', 'b');
  await first.saveData();
  record(first, 'c', 'd');
  first.recordUnstructuredData('age', '31');
  h.server.fail(1, 'network', isDelta);
  await assert.rejects(first.saveData());
  assert.deepEqual(names(h.server.stored.data), ['a', 'b']);

  const { h: h2, opening } = reload(h);
  const second = await opening;
  assert.deepEqual(names(second.getTrialData()), ['a', 'b', 'c', 'd']);
  assert.equal(second.taskdata.get('currenttrial'), 4);
  assert.deepEqual(second.getQuestionData(), { age: '31' });
  await h2.clock.advance(0);
  assert.deepEqual(names(h.server.stored.data), ['a', 'b', 'c', 'd'], 're-sent without waiting for a saveData');
  assert.deepEqual(h.server.stored.questiondata, { age: '31' });
  assert.equal(h.storage.getItem(OUTBOX), null, 'the outbox is cleared once acknowledged');
  record(second, 'e');
  assert.equal(second.getTrialData().at(-1).current_trial, 4);
});

test('an event the server added on the return does not hide an unsent one from the outbox', async () => {
  const h = harness();
  const first = await open(h, { retries: 0 });
  record(first, 'a');
  await first.saveData();
  await h.clock.advance(500);
  h.browser.window.dispatch('blur');
  record(first, 'b');
  h.server.fail(1, 'network', isDelta);
  await assert.rejects(first.saveData());
  // Coming back through /exp, the server records the return in the stored events.
  const resumed = { eventtype: 'resumed', value: 'STARTED', timestamp: h.clock.now() + 1000, interval: 1500 };
  h.server.stored.eventdata.push(resumed);
  await h.clock.advance(2000);

  const second = await reload(h).opening;
  await h.clock.advance(0);
  const kinds = second.getEventData().map((e) => [e.eventtype, e.value]);
  assert.deepEqual(kinds, [
    ['initialized', null], ['window_resize', [1280, 800]], ['resumed', 'STARTED'], ['focus', 'off'],
    ['initialized', null], ['window_resize', [1280, 800]],
  ]);
  assert.deepEqual(h.server.stored.eventdata, second.getEventData());
  assert.deepEqual(names(h.server.stored.data), ['a', 'b']);
});

test('rows recorded but never saved are in the outbox within a second', async () => {
  const h = harness();
  const first = await open(h);
  record(first, 'a');
  assert.equal(h.storage.getItem(OUTBOX), null);
  await h.clock.advance(1000);
  assert.deepEqual(names(outbox(h).data), ['a']);

  const second = await reload(h).opening;
  await h.clock.advance(0);
  assert.deepEqual(names(second.getTrialData()), ['a']);
  assert.deepEqual(names(h.server.stored.data), ['a']);
});

test('hiding the page starts an ordinary save of what is pending', async () => {
  const h = harness();
  const psiturk = await open(h);
  record(psiturk, 'a');
  h.browser.document.visibilityState = 'hidden';
  h.browser.document.dispatch('visibilitychange');
  assert.deepEqual(names(outbox(h).data), ['a'], 'written at once, before any answer');
  await h.clock.advance(0);
  assert.deepEqual(names(h.server.stored.data), ['a']);
  assert.deepEqual(h.browser.navigator.sentBeacons, []);
  h.browser.document.dispatch('visibilitychange');
  await h.clock.advance(0);
  assert.equal(h.server.deltas().length, 1, 'nothing new, nothing sent');
});

test('pagehide beacons the pending delta as text/plain, and a reload does not duplicate it', async () => {
  const h = harness();
  const first = await open(h);
  record(first, 'a', 'b');
  h.browser.window.dispatch('pagehide');
  const beacons = h.browser.navigator.sentBeacons;
  assert.equal(beacons.length, 1);
  assert.equal(beacons[0].url, '/sync/A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01/delta');
  assert.equal(beacons[0].blob.type, 'text/plain');
  assert.deepEqual(names(JSON.parse(await beacons[0].blob.text()).data), ['a', 'b']);
  assert.deepEqual(names(outbox(h).data), ['a', 'b'], 'kept until acknowledged');

  await deliverBeacons(h.server, h.browser.navigator);
  const second = await reload(h).opening;
  await h.clock.advance(0);
  assert.deepEqual(names(second.getTrialData()), ['a', 'b']);
  assert.deepEqual(names(h.server.stored.data), ['a', 'b']);
  assert.equal(h.storage.getItem(OUTBOX), null);
});

test('without sendBeacon, or with a secret to send, the unload flush is a keepalive fetch', async () => {
  for (const [browser, secret] of [[fakeBrowser({ beacons: false }), undefined], [fakeBrowser(), 's3cret']]) {
    const h = harness({ browser, server: new FakeServer({ secret }) });
    const psiturk = await open(h, { secret });
    record(psiturk, 'a');
    browser.window.dispatch('pagehide');
    const call = h.fetch.calls.at(-1);
    assert.equal(call.url, '/sync/A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01/delta');
    assert.equal(call.init.keepalive, true);
    assert.equal(call.init.headers['X-PsiTurk-Secret'], secret);
    await h.clock.advance(0);
    assert.deepEqual(names(h.server.stored.data), ['a']);
    assert.equal((browser.navigator.sentBeacons || []).length, 0);
  }
});

test('completeHIT shows a saving message and navigates only after the last acknowledgement', async () => {
  const h = harness();
  const { window, document } = h.browser;
  const psiturk = await open(h, { retries: 1 });
  psiturk.finishInstructions();
  await h.clock.advance(0);
  record(psiturk, 'a', 'b');
  h.server.fail(4, 'network', isDelta);
  const done = psiturk.completeHIT();
  const note = document.body.children[0];
  assert.equal(note.textContent, 'Saving your data\u2026');
  assert.deepEqual(window.dispatch('beforeunload', {}), [], 'no leave prompt while finishing');
  await h.clock.advance(3000);
  assert.equal(window.location.href, '/exp', 'still waiting: past the retries a saveData() would allow');
  assert.match(note.textContent, /keep this page open/);
  await h.clock.advance(60000);
  await done;
  assert.deepEqual(names(h.server.stored.data), ['a', 'b']);
  assert.equal(window.location.href, '/complete?uniqueId=A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01&mode=sandbox');
  assert.ok(h.server.requests.at(-1).at >= h.server.deltas().at(-1).at);
});

test('with a secret, every request carries X-PsiTurk-Secret', async () => {
  const h = harness({ server: new FakeServer({ secret: 's3cret' }) });
  const psiturk = await open(h, { secret: 's3cret' });
  record(psiturk, 'a');
  psiturk.startTask();
  await psiturk.saveData();
  await h.clock.advance(0);
  assert.deepEqual(names(h.server.stored.data), ['a']);
  assert.deepEqual(h.server.statusLog, [['/inexp', fixture.id]]);
  assert.ok(h.server.requests.every((r) => r.headers['X-PsiTurk-Secret'] === 's3cret'));
});

test('createPsiTurk fails when the saved state cannot be loaded', async () => {
  const h = harness({ server: new FakeServer({ secret: 's3cret' }) });
  await assert.rejects(open(h), (err) => err.status === 403);
  const h2 = harness();
  h2.server.fail(1, 503);
  const psiturk = await Promise.all([open(h2), h2.clock.advance(1000)]).then(([p]) => p);
  assert.equal(psiturk.taskdata.get('condition'), fixture.condition, 'a transient failure is retried');
});

test('a full save refused as stale is reported, not retried', async () => {
  const h = harness();
  h.server.stored = structuredClone(fixture);
  const psiturk = await open(h, { incremental: false });
  psiturk.taskdata.set('data', []);
  let failure = null;
  await assert.rejects(psiturk.saveData({ error: (taskdata, err) => (failure = err) }));
  assert.equal(h.server.puts().length, 1);
  assert.equal(failure.code, 'stale_save');
});
