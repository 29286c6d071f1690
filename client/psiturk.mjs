// Module entry point: psiturk.js is a classic script (old pages load it with a plain <script> tag), so this
// imports it for its side effect and re-exports what it put on globalThis.
import './psiturk.js';

export const PsiTurk = globalThis.PsiTurk;
export const createPsiTurk = globalThis.createPsiTurk;
