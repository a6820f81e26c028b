#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI lives in dist/ (compiled from src/cli/).
require('../dist/src/cli/main.js').main(process.argv.slice(2));
