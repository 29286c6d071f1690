// The classic path: psiturk.js run as a plain <script> (here a vm context with browser-like globals), and
// `new PsiTurk(uniqueId, adServerLoc, mode)` ready on return, as psiTurk 3 task.js code expects.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import vm from 'node:vm';
import * as module from './psiturk.mjs';
import {
  FakeClock, FakeServer, FakeStorage, fakeBrowser, fakeFetch, fakeXMLHttpRequest, fixture, settle,
} from './fakes.mjs';

const SOURCE = readFileSync(new URL('./psiturk.js', import.meta.url), 'utf8');
const SYNC = '/sync/A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01';

// A page: the script's globals are the fakes, as a browser's would be.
function classicPage(server, storage = new FakeStorage()) {
  const clock = new FakeClock();
  const browser = fakeBrowser();
  const XMLHttpRequest = fakeXMLHttpRequest(server);
  const sent = [];
  const Recording = class extends XMLHttpRequest {
    send(body) {
      sent.push(this);
      super.send(body);
    }
  };
  const page = vm.createContext({
    ...browser, localStorage: storage, XMLHttpRequest: Recording, fetch: fakeFetch(server),
    setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, console, Blob,
  });
  page.window = Object.assign(browser.window, { document: browser.document });
  vm.runInContext(SOURCE, page, { filename: 'psiturk.js' });
  return { page, clock, browser, sent };
}

const plain = (value) => JSON.parse(JSON.stringify(value));

test('the script defines PsiTurk and createPsiTurk as globals and exports nothing', () => {
  const { page } = classicPage(new FakeServer());
  assert.equal(typeof page.PsiTurk, 'function');
  assert.equal(typeof page.createPsiTurk, 'function');
  assert.doesNotMatch(SOURCE, /^\s*export\s/m);
});

test('the module re-exports the same two functions', () => {
  assert.equal(module.PsiTurk, globalThis.PsiTurk);
  assert.equal(module.createPsiTurk, globalThis.createPsiTurk);
});

test('the constructor loads the stored state with one synchronous GET /sync', () => {
  const server = new FakeServer();
  server.stored = structuredClone(fixture);
  const { page, sent } = classicPage(server);
  page.uniqueId = fixture.id;
  const psiturk = vm.runInContext('new PsiTurk(uniqueId, "/complete", "sandbox")', page);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].method, 'GET');
  assert.equal(sent[0].url, SYNC);
  assert.equal(sent[0].async, false);
  // Ready at once: the stored state is there before any callback or await.
  assert.equal(psiturk.taskdata.get('condition'), fixture.condition);
  assert.deepEqual(plain(psiturk.getTrialData()), fixture.data);
  assert.deepEqual(plain(psiturk.getQuestionData()), fixture.questiondata);
  assert.equal(psiturk.getEventData().length, fixture.eventdata.length + 2);
});

test('a new participant gets the ids and condition over the defaults', () => {
  const server = new FakeServer();
  const { page } = classicPage(server);
  const psiturk = new page.PsiTurk(fixture.id, '/complete', 'sandbox');
  const model = plain(psiturk.taskdata.toJSON());
  assert.deepEqual(
    { ...model, eventdata: [] },
    {
      condition: fixture.condition, counterbalance: 0, assignmentId: fixture.assignmentId,
      workerId: fixture.workerId, hitId: fixture.hitId, currenttrial: 0, bonus: 0, data: [], questiondata: {},
      eventdata: [], useragent: fixture.useragent, mode: 'sandbox', id: fixture.id,
    },
  );
  assert.equal(psiturk.taskdata.id, fixture.id);
});

test('taskdata get, set and toJSON behave like the Backbone model', () => {
  const { page } = classicPage(new FakeServer());
  const psiturk = new page.PsiTurk(fixture.id, '/complete', 'sandbox');
  psiturk.taskdata.set('bonus', 0.5);
  psiturk.taskdata.set({ condition: 3, custom: 'x' });
  assert.equal(psiturk.taskdata.get('bonus'), 0.5);
  assert.equal(psiturk.taskdata.get('condition'), 3);
  const json = psiturk.taskdata.toJSON();
  assert.equal(json.custom, 'x');
  json.custom = 'changed';
  assert.equal(psiturk.taskdata.get('custom'), 'x', 'toJSON returns a copy');
});

test('mode defaults to live, and PsiTurk works without new and with unbound methods', async () => {
  const server = new FakeServer();
  const { page, browser } = classicPage(server);
  const psiturk = page.PsiTurk(fixture.id, '/complete');
  assert.ok(psiturk instanceof page.PsiTurk);
  assert.equal(psiturk.taskdata.get('mode'), 'live');
  const { recordTrialData, completeHIT } = psiturk;
  recordTrialData({ phase: 'TEST' });
  await completeHIT();
  assert.equal(server.stored.data.length, 1);
  assert.equal(browser.window.location.href, '/complete?uniqueId=A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01&mode=live');
});

test('a failed load leaves the defaults in place instead of throwing', () => {
  const server = new FakeServer();
  server.fail(1, 500);
  const { page } = classicPage(server);
  const warn = console.warn;
  console.warn = () => {};
  try {
    const psiturk = new page.PsiTurk(fixture.id, '/complete', 'sandbox');
    assert.equal(psiturk.taskdata.get('workerId'), 0);
  } finally {
    console.warn = warn;
  }
});

test('the classic constructor re-sends an outbox left by the previous page', async () => {
  const server = new FakeServer();
  const storage = new FakeStorage();
  const first = new (classicPage(server, storage).page.PsiTurk)(fixture.id, '/complete', 'sandbox');
  first.recordTrialData({ name: 'a' });
  first._persistNow();
  assert.equal(server.stored, null);
  const second = new (classicPage(server, storage).page.PsiTurk)(fixture.id, '/complete', 'sandbox');
  assert.equal(second.getTrialData().length, 1);
  await settle();
  assert.deepEqual(plain(server.stored.data.map((row) => row.trialdata)), [{ name: 'a' }]);
});
