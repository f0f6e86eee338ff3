import { Agent, setGlobalDispatcher } from 'undici';

/**
 * Imported first by the processes of the tests (vitest's setupFiles), the benchmark harness
 * and scripts: requests they make without a dispatcher go through the undici they import,
 * not Node's bundled copy. On Node 24, `import … from 'node:http'` evaluates
 * http's lazy WebSocket exports, which loads Node's own undici; it installs its Agent as the
 * process's global dispatcher before the npm undici is evaluated, and the npm undici keeps
 * an existing one. That Agent does not recognise the npm undici's FormData, so a form body
 * fails with "action is not a function".
 */
setGlobalDispatcher(new Agent());
