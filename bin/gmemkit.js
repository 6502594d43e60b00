#!/usr/bin/env node
// Entry point of the `gmemkit` command: runs the compiled CLI (built by `npm ci` / `npm run build`).
let cli;
try {
  cli = await import('../dist/src/cli/main.js');
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes('dist/src/cli/main.js')) throw e;
  console.error("gmemkit: the compiled CLI (dist/) is missing; run 'npm run build' in the package first.");
  process.exit(2);
}
cli.main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
