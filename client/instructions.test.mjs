// Pages and the instruction pager: the records psiTurk 3 wrote, and what finishing the instructions starts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPsiTurk } from './psiturk.mjs';
import { fixture, harness, navButton } from './fakes.mjs';

const PAGES = ['instruct-1.html', 'instruct-2.html', 'instruct-ready.html'];

async function startWithPages(mode = 'sandbox') {
  const h = harness();
  for (const page of PAGES) h.server.pages[page] = `<p>${page}</p>`;
  const psiturk = await createPsiTurk({ uniqueId: fixture.id, adServerLoc: '/complete', mode, ...h.options });
  await psiturk.preloadPages(PAGES);
  return { ...h, psiturk };
}

const click = (h, kind) => h.browser.document.dispatch('click', { target: navButton(kind) });
const instructionRows = (psiturk) => psiturk.getTrialData().map((row) => row.trialdata);

test('paging records Begin, NextPage, PrevPage and FinishInstructions with view times', async () => {
  const h = await startWithPages();
  h.psiturk.doInstructions(PAGES, () => {});
  await h.clock.advance(1000);
  click(h, 'continue');
  await h.clock.advance(2500);
  click(h, 'previous');
  await h.clock.advance(400);
  click(h, 'continue');
  await h.clock.advance(300);
  click(h, 'continue');
  await h.clock.advance(900);
  click(h, 'continue');
  const base = { phase: 'INSTRUCTIONS' };
  assert.deepEqual(instructionRows(h.psiturk), [
    { ...base, templates: PAGES, action: 'Begin' },
    { ...base, template: PAGES[0], indexOf: 0, action: 'NextPage', viewTime: 1000 },
    { ...base, template: PAGES[1], indexOf: 1, action: 'PrevPage', viewTime: 2500 },
    { ...base, template: PAGES[0], indexOf: 0, action: 'NextPage', viewTime: 400 },
    { ...base, template: PAGES[1], indexOf: 1, action: 'NextPage', viewTime: 300 },
    { ...base, template: PAGES[2], indexOf: 2, action: 'FinishInstructions', viewTime: 900 },
  ]);
  assert.deepEqual(h.psiturk.getTrialData().map((row) => row.current_trial), [0, 1, 2, 3, 4, 5]);
  assert.equal(h.psiturk.taskdata.get('currenttrial'), 6);
});

test('each page is shown in the body, and previous does nothing on the first page', async () => {
  const h = await startWithPages();
  const { body } = h.browser.document;
  h.psiturk.doInstructions(PAGES, () => {});
  assert.equal(body.innerHTML, '<p>instruct-1.html</p>');
  click(h, 'previous');
  assert.equal(body.innerHTML, '<p>instruct-1.html</p>');
  assert.equal(h.psiturk.getTrialData().length, 1);
  click(h, 'continue');
  assert.equal(body.innerHTML, '<p>instruct-2.html</p>');
});

test('the instruction indicator follows the current page', async () => {
  const h = await startWithPages();
  assert.equal(h.psiturk.getInstructionIndicator(), undefined);
  h.psiturk.doInstructions(PAGES, () => {});
  click(h, 'continue');
  assert.deepEqual(h.psiturk.getInstructionIndicator(), {
    currently_viewing: { indexOf: 1, template: PAGES[1] },
    instruction_deck: { total_pages: 3, templates: PAGES },
  });
});

test('finishing calls back once, starts the task and stops listening for clicks', async () => {
  const h = await startWithPages();
  let calls = 0;
  h.psiturk.doInstructions(PAGES, () => calls++);
  for (let i = 0; i < PAGES.length; i++) click(h, 'continue');
  await h.clock.advance(0);
  assert.equal(calls, 1);
  assert.deepEqual(h.server.statusLog, [['/inexp', fixture.id]]);
  assert.equal(h.server.deltas().length, 1, 'startTask saves');
  click(h, 'continue');
  assert.equal(h.psiturk.getTrialData().length, 1 + PAGES.length);
  assert.equal(calls, 1);
});

test('outside debug mode, leaving after the instructions prompts and posts /quitter', async () => {
  const h = await startWithPages('sandbox');
  const { window, navigator } = h.browser;
  assert.deepEqual(window.dispatch('beforeunload', {}), [], 'no prompt before the task starts');
  h.psiturk.finishInstructions();
  const event = {};
  const [message] = window.dispatch('beforeunload', event);
  assert.match(message, /leave/);
  assert.equal(event.returnValue, message);
  const quitter = navigator.sentBeacons.find((b) => b.url === '/quitter');
  assert.equal(await quitter.blob.text(), 'uniqueId=A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01');
  assert.match(quitter.blob.type, /^application\/x-www-form-urlencoded/);
  h.psiturk.teardownTask();
  assert.deepEqual(window.dispatch('beforeunload', {}), [], 'teardownTask removes the prompt');
});

test('debug mode never prompts on leaving', async () => {
  const h = await startWithPages('debug');
  h.psiturk.finishInstructions();
  assert.deepEqual(h.browser.window.dispatch('beforeunload', {}), []);
  assert.deepEqual(h.browser.navigator.sentBeacons, []);
});

test('getPage refuses a page that was not preloaded', async () => {
  const h = await startWithPages();
  assert.equal(h.psiturk.getPage(PAGES[0]), '<p>instruct-1.html</p>');
  assert.throws(() => h.psiturk.getPage('nope.html'), /Attemping to load page before preloading: nope.html/);
});

test('preloadPages asks for all pages at once and fails when one is missing', async () => {
  const h = await startWithPages();
  const before = h.fetch.calls.length;
  const loading = h.psiturk.preloadPages(['instruct-1.html', 'missing.html']);
  assert.equal(h.fetch.calls.length, before + 2, 'both requests are out before either answers');
  await assert.rejects(loading, /missing.html/);
});

test('showPage runs the inline scripts of a page, as jQuery did', async () => {
  const h = await startWithPages();
  const { document } = h.browser;
  const replaced = [];
  const script = {
    attributes: [{ name: 'type', value: 'text/javascript' }], text: 'go()', replaceWith: (node) => replaced.push(node),
  };
  document.body.querySelectorAll = (selector) => (selector === 'script' ? [script] : []);
  h.psiturk.showPage(PAGES[0]);
  assert.equal(replaced.length, 1);
  assert.equal(replaced[0].tagName, 'SCRIPT');
  assert.equal(replaced[0].text, 'go()');
  assert.deepEqual(replaced[0].attributes, { type: 'text/javascript' });
});

test('computeBonus GETs the route with the uniqueId and calls back with the reply', async () => {
  const h = await startWithPages();
  let reply = null;
  await h.psiturk.computeBonus('compute_bonus', (body) => (reply = body));
  assert.deepEqual(reply, { bonusComputed: 'success' });
  assert.ok(h.fetch.calls.some((c) => c.url === 'compute_bonus?uniqueId=A3FIXTUREWORKER%3A3FIXTUREASSIGNMENTID01'));
});

test('preloadImages creates one image per source', async () => {
  const h = await startWithPages();
  const images = h.psiturk.preloadImages(['a.png', 'b.png']);
  assert.deepEqual(images.map((image) => image.src), ['a.png', 'b.png']);
});
