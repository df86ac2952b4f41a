// The layers of src/ (README, "Architecture"): every import of every source file, type-only and
// dynamic ones included, runs down the layers or within one, and no chain of imports comes back
// to where it started.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const src = fileURLToPath(new URL('../src/', import.meta.url));

/** Bottom to top: a file may import from its own layer and the ones before it. */
const LAYERS = ['core', 'record', 'integrations', 'time', 'analysis', 'export', 'serve', '(facade)'];

/** The layer of a file under src/: its folder, or the facade for the files at the top (monitor, index). */
const layerOf = (file: string): string => {
  const folder = relative(src, file).split('/');
  return folder.length === 1 ? '(facade)' : folder[0];
};

const sources = (readdirSync(src, { recursive: true }) as string[])
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('cjs/'))
  .map((f) => join(src, f))
  .sort();

/** Each source file's imports of other source files (absolute paths). */
const graph = new Map<string, string[]>(
  sources.map((file) => {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const local = importedFiles
      .map((i) => i.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => resolve(dirname(file), name).replace(/\.js$/, '.ts'));
    return [file, [...new Set(local)]];
  }),
);

const name = (file: string) => relative(src, file);

test('the parser sees the imports: the facade imports from every layer, the core from none above it', () => {
  const monitor = graph.get(join(src, 'monitor.ts'));
  assert.ok(monitor, 'src/monitor.ts is read');
  const layers = new Set(monitor.map(layerOf));
  for (const layer of ['core', 'record', 'time', 'analysis', 'export', 'serve'])
    assert.ok(layers.has(layer), `monitor.ts imports from ${layer}/`);
  for (const [file, imports] of graph)
    for (const i of imports) assert.ok(graph.has(i), `${name(file)} imports ${name(i)}, a source file`);
});

test('every folder of src/ is a layer, and every file is in one', () => {
  for (const file of sources)
    assert.ok(LAYERS.includes(layerOf(file)), `${name(file)} is in a layer of ${LAYERS.join(', ')}`);
});

test('imports run down the layers, never up', () => {
  const up: string[] = [];
  for (const [file, imports] of graph) {
    for (const i of imports) {
      if (LAYERS.indexOf(layerOf(i)) > LAYERS.indexOf(layerOf(file))) up.push(`${name(file)} -> ${name(i)}`);
    }
  }
  assert.equal(up, [], `imports that go up a layer (order: ${LAYERS.join(' < ')})`);
});

test('no import cycle', () => {
  // Depth-first search; a back edge to a file still on the path closes a cycle.
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const cycles: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const i of graph.get(file) ?? []) {
      if (state.get(i) === 'open') cycles.push([...path.slice(path.indexOf(i)), i].map(name).join(' -> '));
      else if (!state.has(i)) visit(i);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of sources) if (!state.has(file)) visit(file);
  assert.equal(cycles, [], 'import cycles');
});

test.run();
