/**
 * The shape of the house (issue #19, STYLE.md "Shape of the house"): the import graph of src/,
 * type-only and dynamic imports counted (a type is a dependency of the design), read with the
 * TypeScript compiler's own pre-processor. No circle; no import from a lower layer to a
 * higher one; no command importing another command.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const SRC = resolve('src');

/** Lowest first. A file may import its own layer (no circle) or any lower one. */
const LAYERS: ReadonlyArray<readonly [string, RegExp]> = [
  ['core', /^(errors|footprint|ids)\.ts$/],
  ['parts', /^(input|seeds|pingone|report|sandbox)\//],
  ['engine and configuration', /^(engine\/|config\.ts$)/],
  ['command plumbing', /^commands\/shared\//],
  ['commands', /^commands\//],
  ['command line', /^cli\.ts$/],
  ['entry points', /^(main|bin|demo)\.ts$/],
];

function layerOf(file: string): number {
  const at = LAYERS.findIndex(([, re]) => re.test(file));
  if (at === -1) throw new Error(`${file} belongs to no layer: add it to the architecture test's LAYERS`);
  return at;
}

/** `commands/run/folder.ts` -> `run`; `commands/import.ts` -> `import`; plumbing -> undefined. */
function commandOf(file: string): string | undefined {
  const m = /^commands\/([^/.]+)/.exec(file);
  return m && m[1] !== 'shared' ? m[1] : undefined;
}

function importGraph(): Map<string, Set<string>> {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) files.push(path);
    }
  };
  walk(SRC);
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const to = new Set<string>();
    for (const imported of info.importedFiles) {
      if (!imported.fileName.startsWith('.')) continue;
      to.add(relative(SRC, resolve(dirname(file), imported.fileName.replace(/\.js$/, '.ts'))));
    }
    graph.set(relative(SRC, file), to);
  }
  return graph;
}

/** Strongly connected components of more than one file, and files importing themselves (Tarjan). */
function circles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const graph = importGraph();

test('the graph is read: every file of src/ is in it, with its imports', () => {
  expect(graph.size).toBeGreaterThan(60);
  expect(graph.get('main.ts')?.has('cli.ts')).toBe(true);
  // A type-only import counts.
  expect(graph.get('pingone/client.ts')?.has('pingone/connection.ts')).toBe(true);
});

test('no circle among the files of src/', () => {
  expect(circles(graph)).toEqual([]);
});

test('the check finds a circle when there is one', () => {
  const withCircle = new Map(graph);
  withCircle.set('errors.ts', new Set([...(graph.get('errors.ts') ?? []), 'main.ts']));
  expect(circles(withCircle).length).toBeGreaterThan(0);
});

test('no import from a lower layer to a higher one', () => {
  const upward: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) if (layerOf(to) > layerOf(from)) upward.push(`${from} (${LAYERS[layerOf(from)]![0]}) -> ${to} (${LAYERS[layerOf(to)]![0]})`);
  }
  expect(upward).toEqual([]);
});

test('no command imports another command; only the entry points import the command line', () => {
  const crossing: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const a = commandOf(from);
      const b = commandOf(to);
      if (b !== undefined && a !== b && layerOf(from) === layerOf(to)) crossing.push(`${from} -> ${to}`);
      if (to === 'cli.ts' && from !== 'main.ts') crossing.push(`${from} -> cli.ts`);
    }
  }
  expect(crossing).toEqual([]);
});
