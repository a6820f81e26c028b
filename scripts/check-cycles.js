#!/usr/bin/env node
// Fails (exit 1) when the modules under src/ import each other in a cycle. Every relative import
// counts, `import type` too: a cycle of types is a cycle of knowledge, even when the compiler
// erases it. Prints each cycle found as a chain of files.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', process.argv[2] || 'src');
const files = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (/\.ts$/.test(e.name) && !/\.d\.ts$/.test(e.name)) files.push(p);
  }
})(root);

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;'"]*?from\s*['"](\.[^'"]+)['"]|require\(\s*['"](\.[^'"]+)['"]\s*\)/g;
const graph = new Map();
for (const f of files) {
  const text = fs.readFileSync(f, 'utf8');
  const deps = new Set();
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] || m[2];
    const base = path.resolve(path.dirname(f), spec);
    for (const cand of [base + '.ts', path.join(base, 'index.ts')]) {
      if (graph.has(cand) || files.includes(cand)) { deps.add(cand); break; }
    }
  }
  graph.set(f, [...deps]);
}

// Tarjan's strongly connected components: every component of more than one file is a cycle.
let index = 0;
const idx = new Map(), low = new Map(), onStack = new Set(), stack = [], sccs = [];
function strong(v) {
  idx.set(v, index); low.set(v, index); index++;
  stack.push(v); onStack.add(v);
  for (const w of graph.get(v) || []) {
    if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))); }
    else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const c = [];
    let w;
    do { w = stack.pop(); onStack.delete(w); c.push(w); } while (w !== v);
    if (c.length > 1 || (graph.get(v) || []).includes(v)) sccs.push(c);
  }
}
for (const f of files) if (!idx.has(f)) strong(f);

const rel = (f) => path.relative(root, f);
if (sccs.length === 0) {
  console.log(`import cycles: none (${files.length} files under ${path.relative(process.cwd(), root) || '.'})`);
  process.exit(0);
}
for (const c of sccs) console.log(`import cycle among ${c.length} files: ${c.map(rel).sort().join(', ')}`);
process.exit(1);
