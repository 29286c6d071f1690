/**
 * The example experiment: instructions, a short colour-naming (Stroop) task, a questionnaire.
 *
 * exp.html creates the psiTurk client and calls runTask(psiTurk, {condition, counterbalance}).
 * What the participant does is recorded with psiTurk.recordTrialData /
 * psiTurk.recordUnstructuredData and sent to the server by psiTurk.saveData; the server keeps it
 * as the participant's datastring.
 *
 * The two numbers the server assigns each participant change the task a little:
 *   condition       the mix of trials (TRIAL_MIXES below);
 *   counterbalance  the order in which the response keys are shown (KEY_ORDERS; drawn by style.css).
 * Set num_conds and num_counters in config.txt to the number of variants you use (2 and 2 here).
 */

// Every page is fetched once, up front, so that nothing has to load mid-task.
const INSTRUCTION_PAGES = [
  "instructions/instruct-1.html",
  "instructions/instruct-2.html",
  "instructions/instruct-3.html",
  "instructions/instruct-ready.html",
];
const STAGE_PAGE = "stage.html";
const QUESTIONNAIRE_PAGE = "postquestionnaire.html";

const COLORS = ["red", "green", "blue"];
const NEUTRAL_WORDS = ["CHAIR", "HORSE", "PAPER"];
const RESPONSE_KEYS = { r: "red", g: "green", b: "blue" };

// Condition 0 has as many congruent (BLUE in blue), incongruent (RED in blue) and unrelated
// (CHAIR in blue) trials. Condition 1 is "mostly congruent", which tends to make the rare
// incongruent trials even slower.
const TRIAL_MIXES = [
  { congruent: 4, incongruent: 4, unrelated: 4 },
  { congruent: 8, incongruent: 2, unrelated: 2 },
];
// Counterbalance 0 shows the keys as R G B, counterbalance 1 as B G R.
const KEY_ORDERS = ["forward", "reversed"];

const FIXATION_MS = 500;
const BLANK_MS = 300;
const BONUS_WAIT_MS = 5000;

/** Run the whole experiment, from the first instruction page to the end of the HIT. */
export async function runTask(psiTurk, { condition = 0, counterbalance = 0 } = {}) {
  document.documentElement.dataset.keyOrder = KEY_ORDERS[counterbalance % KEY_ORDERS.length];
  await psiTurk.preloadPages([...INSTRUCTION_PAGES, STAGE_PAGE, QUESTIONNAIRE_PAGE]);

  // Finishing the instructions also tells the server that the participant has started: from
  // then on, leaving the page counts as quitting.
  await new Promise((resolve) => psiTurk.doInstructions(INSTRUCTION_PAGES, resolve));
  await runTrials(psiTurk, makeTrials(TRIAL_MIXES[condition % TRIAL_MIXES.length]));
  await runQuestionnaire(psiTurk);
  await requestBonus(psiTurk);
  await psiTurk.completeHIT();
}

/** The trials for one participant, shuffled: {word, color, relation}, color being the ink. */
export function makeTrials(mix) {
  const pools = {
    congruent: COLORS.map((color) => ({ word: color.toUpperCase(), color })),
    incongruent: COLORS.flatMap((color) =>
      COLORS.filter((name) => name !== color).map((name) => ({ word: name.toUpperCase(), color })),
    ),
    unrelated: NEUTRAL_WORDS.flatMap((word) => COLORS.map((color) => ({ word, color }))),
  };
  const trials = Object.entries(mix).flatMap(([relation, count]) =>
    draw(pools[relation], count).map((item) => ({ ...item, relation })),
  );
  return shuffle(trials);
}

async function runTrials(psiTurk, trials) {
  psiTurk.showPage(STAGE_PAGE);
  const stim = document.getElementById("stim");
  const progress = document.getElementById("progress");

  for (const [index, trial] of trials.entries()) {
    progress.textContent = `Word ${index + 1} of ${trials.length}`;
    show(stim, "+", "fixation");
    await sleep(FIXATION_MS);

    show(stim, trial.word, `ink-${trial.color}`);
    // The response time runs from the frame that paints the word to the key press; both
    // timestamps come from the same high-resolution clock.
    const shownAt = await nextFrame();
    const { response, pressedAt } = await nextResponse();
    psiTurk.recordTrialData({
      phase: "TEST",
      word: trial.word,
      color: trial.color,
      relation: trial.relation,
      response,
      hit: response === trial.color,
      rt: Math.round(pressedAt - shownAt),
    });

    show(stim, "", "");
    await sleep(BLANK_MS);
  }
  // A checkpoint only: if it fails, the save after the questionnaire sends everything again.
  psiTurk.saveData().catch((error) => console.warn("Checkpoint save failed:", error));
}

async function runQuestionnaire(psiTurk) {
  psiTurk.showPage(QUESTIONNAIRE_PAGE);
  psiTurk.recordTrialData({ phase: "postquestionnaire", status: "begin" });
  const button = document.getElementById("next");
  const status = document.getElementById("save-status");

  await clicked(button);
  for (const field of document.querySelectorAll("select[id], textarea[id], input[id]")) {
    psiTurk.recordUnstructuredData(field.id, field.value);
    field.disabled = true;
  }
  psiTurk.recordTrialData({ phase: "postquestionnaire", status: "submit" });

  // The data must reach the server before the HIT ends, so a failed save is retried by hand.
  for (;;) {
    button.disabled = true;
    status.textContent = "Saving your answers\u2026";
    try {
      await psiTurk.saveData();
      return;
    } catch (error) {
      console.error(error);
      status.textContent =
        "We couldn't reach the study server. Check your internet connection, then press Try again.";
      button.textContent = "Try again";
      button.disabled = false;
      await clicked(button);
    }
  }
}

// The server computes the bonus from the saved trials (custom.py, GET /compute_bonus), so that it
// can't be edited in the browser. computeBonus calls back when the server has answered; a slow or
// failed request must not keep the participant from finishing, and can be redone later.
function requestBonus(psiTurk) {
  return new Promise((resolve) => {
    const request = psiTurk.computeBonus("compute_bonus", resolve);
    Promise.resolve(request).catch(resolve);
    setTimeout(resolve, BONUS_WAIT_MS);
  });
}

function nextResponse() {
  return new Promise((resolve) => {
    function onKeyDown(event) {
      const response = RESPONSE_KEYS[(event.key || "").toLowerCase()];
      if (!response || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
      event.preventDefault();
      window.removeEventListener("keydown", onKeyDown);
      resolve({ response, pressedAt: event.timeStamp });
    }
    window.addEventListener("keydown", onKeyDown);
  });
}

function show(stim, text, className) {
  stim.textContent = text;
  stim.className = `stim ${className}`;
}

function clicked(element) {
  return new Promise((resolve) => element.addEventListener("click", resolve, { once: true }));
}

function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(resolve));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// `count` items of `pool` in random order, each used once before any is used again.
function draw(pool, count) {
  const items = [];
  while (items.length < count) items.push(...shuffle(pool));
  return items.slice(0, count);
}

// Fisher-Yates, on a copy.
function shuffle(list) {
  const copy = [...list];
  for (let i = copy.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}
