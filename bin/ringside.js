#!/usr/bin/env -S node --initial-old-space-size=64 --max-semi-space-size=8
'use strict';
// Thin launcher: the CLI lives in dist/ (compiled from src/cli/). The #! line carries the node flags
// of src/cli/node-flags.ts (NODE_FLAGS); run as `node bin/ringside.js`, pass them yourself.
require('../dist/src/cli/main.js').main(process.argv.slice(2));
