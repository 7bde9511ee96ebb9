// Copy the two browser libraries the dashboard uses (marked: markdown to
// HTML; DOMPurify: HTML sanitizer) from node_modules into web/vendor/, with
// their licenses. The copies are committed, so `cargo build` needs no npm.
// (.js, not .mjs: some static servers give .mjs no JavaScript MIME type,
// and browsers refuse such module scripts.)
// Run after bumping either version in package.json: `npm run vendor`.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, '..', 'node_modules');
const out = join(here, '..', '..', 'web', 'vendor');
mkdirSync(out, { recursive: true });

const files = [
  ['marked/lib/marked.esm.js', 'marked.esm.js'],
  ['marked/LICENSE', 'LICENSE.marked.md'],
  ['dompurify/dist/purify.es.mjs', 'purify.es.js'],
  ['dompurify/LICENSE', 'LICENSE.dompurify.txt'],
];
for (const [from, to] of files) copyFileSync(join(modules, from), join(out, to));

// Source maps are not shipped: drop the trailing reference so browsers do
// not request a missing file.
for (const f of ['marked.esm.js', 'purify.es.js']) {
  const p = join(out, f);
  writeFileSync(p, readFileSync(p, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n'));
}
const version = (pkg) => JSON.parse(readFileSync(join(modules, pkg, 'package.json'), 'utf8')).version;
writeFileSync(join(out, 'VERSIONS.txt'),
  `marked ${version('marked')} (MIT)\ndompurify ${version('dompurify')} (MPL-2.0 OR Apache-2.0)\n` +
  'Copied from the npm packages by e2e/scripts/vendor.mjs; do not edit by hand.\n');
console.log(`vendored into ${out}`);
