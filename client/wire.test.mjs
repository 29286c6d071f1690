// The wire format: replaying the participant of tests/fixtures/datastring.json through the client must
// produce that datastring exactly, by a full PUT and by deltas.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPsiTurk } from './psiturk.mjs';
import { FakeClock, clone, fixture, harness, navButton } from './fakes.mjs';

const BEGIN = fixture.eventdata[0].timestamp;
const SYNC = '/sync/A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01';

// Turns the fixture back into what the participant did, in time order.
function fixtureActions() {
  const actions = [];
  for (const row of fixture.data) {
    const trial = row.trialdata;
    let kind = 'record';
    if (trial.phase === 'INSTRUCTIONS') kind = { Begin: 'begin', PrevPage: 'previous' }[trial.action] || 'continue';
    actions.push({ at: row.dateTime, kind, trial });
  }
  // The first two events come from construction; a resize is recorded 200 ms after the browser reports it.
  for (const event of fixture.eventdata.slice(2)) {
    if (event.eventtype === 'window_resize') {
      actions.push({ at: event.timestamp - 200, kind: 'resize', size: event.value });
    } else {
      actions.push({ at: event.timestamp, kind: event.value === 'off' ? 'blur' : 'focus' });
    }
  }
  return actions.sort((a, b) => a.at - b.at);
}

async function replayFixture(extraOptions = {}) {
  const h = harness({ clock: new FakeClock(BEGIN) });
  const { window, document } = h.browser;
  const pages = fixture.data[0].trialdata.templates;
  for (const page of pages) h.server.pages[page] = `<div class="instructionsnav">${page}</div>`;
  const psiturk = await createPsiTurk({
    uniqueId: fixture.id, adServerLoc: '/complete', mode: fixture.mode, ...h.options, ...extraOptions,
  });
  await psiturk.preloadPages(pages);
  for (const action of fixtureActions()) {
    await h.clock.advanceTo(action.at);
    if (action.kind === 'begin') psiturk.doInstructions(clone(action.trial.templates), () => {});
    if (action.kind === 'continue' || action.kind === 'previous') {
      document.dispatch('click', { target: navButton(action.kind) });
    }
    if (action.kind === 'record') psiturk.recordTrialData(clone(action.trial));
    if (action.kind === 'resize') {
      [window.innerWidth, window.innerHeight] = action.size;
      window.dispatch('resize');
    }
    if (action.kind === 'blur' || action.kind === 'focus') window.dispatch(action.kind);
  }
  for (const [field, value] of Object.entries(fixture.questiondata)) psiturk.recordUnstructuredData(field, value);
  await psiturk.saveData();
  return { ...h, psiturk };
}

test('a full save (incremental: false) PUTs exactly the fixture datastring', async () => {
  const { server } = await replayFixture({ incremental: false });
  const puts = server.puts();
  assert.equal(puts.length, 2, 'one PUT at the end of the instructions, one at the end');
  const last = puts.at(-1);
  assert.equal(last.url, SYNC);
  assert.equal(last.headers['Content-Type'], 'application/json');
  assert.deepEqual(Object.keys(last.json).sort(), Object.keys(fixture).sort());
  assert.deepEqual(Object.keys(last.json.data[0]).sort(), ['current_trial', 'dateTime', 'trialdata', 'uniqueid']);
  assert.deepEqual(Object.keys(last.json.eventdata[0]).sort(), ['eventtype', 'interval', 'timestamp', 'value']);
  assert.deepEqual(last.json, fixture);
  assert.equal(server.deltas().length, 0);
});

test('incremental saves rebuild the same datastring on the server', async () => {
  const { server } = await replayFixture();
  assert.equal(server.puts().length, 0);
  assert.deepEqual(server.stored, fixture);
});

test('the first delta carries the whole model, the last only what came after it', async () => {
  const { server } = await replayFixture();
  const [first, last] = server.deltas().map((d) => d.json);
  assert.equal(server.deltas().length, 2);
  const finish = fixture.data.findIndex((row) => row.trialdata.action === 'FinishInstructions');

  assert.equal(first.data_from, 0);
  assert.deepEqual(first.data, fixture.data.slice(0, finish + 1));
  assert.equal(first.eventdata_from, 0);
  assert.deepEqual(first.eventdata, fixture.eventdata.slice(0, 2));
  assert.deepEqual(first.questiondata, {});
  assert.deepEqual(Object.keys(first.attributes).sort(),
    Object.keys(fixture).filter((k) => !['data', 'eventdata', 'questiondata'].includes(k)).sort());

  assert.equal(last.data_from, finish + 1);
  assert.deepEqual(last.data, fixture.data.slice(finish + 1));
  assert.equal(last.eventdata_from, 2);
  assert.deepEqual(last.eventdata, fixture.eventdata.slice(2));
  assert.deepEqual(last.questiondata, fixture.questiondata);
  assert.deepEqual(last.attributes, { currenttrial: fixture.currenttrial });
});

test('deltas are JSON posted to /sync/<encoded id>/delta with same-origin credentials', async () => {
  const { fetch } = await replayFixture();
  const call = fetch.calls.find((c) => c.url.endsWith('/delta'));
  assert.equal(call.url, SYNC + '/delta');
  assert.equal(call.init.method, 'POST');
  assert.equal(call.init.headers['Content-Type'], 'application/json');
  assert.equal(call.init.credentials, 'same-origin');
  assert.equal('X-PsiTurk-Secret' in call.init.headers, false);
});

test('the end of the instructions posts /inexp with the form-encoded uniqueId', async () => {
  const { server, fetch } = await replayFixture();
  assert.deepEqual(server.statusLog, [['/inexp', fixture.id]]);
  const call = fetch.calls.find((c) => c.url === '/inexp');
  assert.equal(call.init.body, 'uniqueId=A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01');
  assert.match(call.init.headers['Content-Type'], /^application\/x-www-form-urlencoded/);
});
