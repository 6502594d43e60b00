#!/usr/bin/env node
// Entry point of the `gmemkit` command: runs the compiled CLI (built by `npm ci` / `npm run build`).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
