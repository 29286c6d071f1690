// Automatic events: initialized, window_resize (initial and debounced), focus off/on, each with its interval.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPsiTurk } from './psiturk.mjs';
import { fixture, harness } from './fakes.mjs';

async function start(h, extra = {}) {
  return createPsiTurk({ uniqueId: fixture.id, adServerLoc: '/complete', mode: 'debug', ...h.options, ...extra });
}

const summary = (events) => events.map((e) => [e.eventtype, e.value, e.interval]);

test('construction records initialized and the window size, both with interval 0', async () => {
  const h = harness();
  const psiturk = await start(h);
  assert.deepEqual(psiturk.getEventData(), [
    { eventtype: 'initialized', value: null, timestamp: h.clock.now(), interval: 0 },
    { eventtype: 'window_resize', value: [1280, 800], timestamp: h.clock.now(), interval: 0 },
  ]);
});

test('each interval is the time since the previous event', async () => {
  const h = harness();
  const psiturk = await start(h);
  await h.clock.advance(1500);
  h.browser.window.dispatch('blur');
  await h.clock.advance(320);
  h.browser.window.dispatch('focus');
  await h.clock.advance(7);
  h.browser.window.dispatch('blur');
  assert.deepEqual(summary(psiturk.getEventData()).slice(2), [
    ['focus', 'off', 1500],
    ['focus', 'on', 320],
    ['focus', 'off', 7],
  ]);
});

test('resizes are debounced by 200 ms and record the final size', async () => {
  const h = harness();
  const { window } = h.browser;
  const psiturk = await start(h);
  await h.clock.advance(1000);
  for (const width of [1200, 1100, 1000]) {
    window.innerWidth = width;
    window.dispatch('resize');
    await h.clock.advance(150);
  }
  assert.equal(psiturk.getEventData().length, 2, 'nothing yet: the last resize was 150 ms ago');
  await h.clock.advance(50);
  const last = psiturk.getEventData().at(-1);
  assert.deepEqual(last, { eventtype: 'window_resize', value: [1000, 800], timestamp: h.clock.now(), interval: 1500 });
  assert.equal(psiturk.getEventData().length, 3);
});

test('after a reload the new initialized event follows the stored events', async () => {
  const h = harness();
  h.server.stored = structuredClone(fixture);
  const lastStored = fixture.eventdata.at(-1).timestamp;
  h.clock.time = lastStored + 60000;
  const psiturk = await start(h);
  const events = psiturk.getEventData();
  assert.equal(events.length, fixture.eventdata.length + 2);
  assert.deepEqual(summary(events.slice(-2)), [['initialized', null, 60000], ['window_resize', [1280, 800], 0]]);
});
