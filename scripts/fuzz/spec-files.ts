// Mutated spec files into the loader: every problem it reports must name an existing file and a JSON
// pointer into it, and nothing may throw anything but the loader's own SpecError.
import fc from 'fast-check';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SpecError } from '../../harness/errors.ts';
import { listSpecFiles, loadSpec } from '../../harness/spec/loader.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type Mutation = 'drop' | 'duplicate' | 'retype' | 'truncate' | 'garble';

export interface SpecFuzzOutcome {
  runs: number;
  /** How the loader answered the mutated trees: accepted, or rejected with problems. */
  accepted: number;
  rejected: number;
  failure?: string;
}

/** Every JSON pointer in a document, with the value there. */
function pointers(value: Json, at = ''): { pointer: string; value: Json }[] {
  const here = [{ pointer: at, value }];
  if (value === null || typeof value !== 'object') return here;
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  return here.concat(
    ...entries.map(([k, v]) => pointers(v, `${at}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`)),
  );
}

function resolve(doc: Json, pointer: string): { found: boolean; value?: Json } {
  let value: Json = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (value === null || typeof value !== 'object' || !(key in value)) return { found: false };
    value = (value as Record<string, Json>)[key]!;
  }
  return { found: true, value };
}

function parentOf(pointer: string): { parent: string; key: string } {
  const cut = pointer.lastIndexOf('/');
  return {
    parent: pointer.slice(0, cut),
    key: pointer
      .slice(cut + 1)
      .replaceAll('~1', '/')
      .replaceAll('~0', '~'),
  };
}

const otherTypes: Json[] = ['text', 12345, true, null, { unexpected: 1 }, [1, 'two']];

/** Applies one mutation to a file's text; `pick` chooses the location, `salt` the replacement. */
export function mutate(text: string, mutation: Mutation, pick: number, salt: number): string {
  if (mutation === 'truncate') return text.slice(0, pick % text.length);
  if (mutation === 'garble') {
    const at = pick % text.length;
    return `${text.slice(0, at)}${'{}[],:"\\x0'[salt % 11]}${text.slice(at)}`;
  }
  const doc = JSON.parse(text) as Json;
  const places = pointers(doc).filter((p) => p.pointer !== '');
  const place = places[pick % places.length]!;
  const { parent, key } = parentOf(place.pointer);
  const container = resolve(doc, parent).value as Record<string, Json> | Json[];
  if (mutation === 'drop') {
    if (Array.isArray(container)) container.splice(Number(key), 1);
    else delete container[key];
  } else if (mutation === 'duplicate') {
    if (!Array.isArray(container)) {
      // A key written twice: JSON.parse keeps the last, so write a retyped copy first.
      const text2 = JSON.stringify(doc, null, 2);
      return text2.replace(
        `"${key}":`,
        `"${key}": ${JSON.stringify(otherTypes[salt % otherTypes.length])}, "${key}":`,
      );
    }
    container.splice(Number(key), 0, structuredClone(place.value));
  } else {
    const replacement = otherTypes.filter(
      (t) => typeof t !== typeof place.value || Array.isArray(t) !== Array.isArray(place.value),
    );
    (container as Record<string, Json>)[key] = replacement[salt % replacement.length]!;
  }
  return JSON.stringify(doc, null, 2);
}

/** Checks that each problem names an existing file of the tree and a pointer into that file's JSON. */
function badProblem(err: SpecError, root: string): string | undefined {
  for (const p of err.problems) {
    const file = path.resolve(p.file);
    if (!file.startsWith(root)) return `problem names a file outside the tree: ${p.file}`;
    let doc: Json;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as Json;
    } catch {
      if (p.pointer === '') continue; // unparsable: the whole file is the place
      return `problem in unparsable ${p.file} names pointer ${p.pointer}`;
    }
    if (p.pointer !== '' && !p.pointer.startsWith('/'))
      return `not a JSON pointer: "${p.pointer}" (${p.file})`;
    // A missing property is reported at (or under) the object that lacks it.
    if (!resolve(doc, p.pointer).found && !resolve(doc, parentOf(p.pointer).parent).found)
      return `pointer ${p.pointer} leads nowhere in ${p.file}: ${p.message}`;
  }
  return undefined;
}

/** Fuzzes the loader with `runs` mutated copies of the spec tree at `specRoot`. */
export function fuzzSpecFiles(specRoot: string, runs: number, seed: number): SpecFuzzOutcome {
  const work = mkdtempSync(path.join(tmpdir(), 'kvmspec-specfuzz-'));
  const root = path.join(work, 'spec');
  cpSync(specRoot, root, { recursive: true });
  const files = listSpecFiles(root);
  const outcome: SpecFuzzOutcome = { runs: 0, accepted: 0, rejected: 0 };
  const mutations: Mutation[] = ['drop', 'duplicate', 'retype', 'truncate', 'garble'];
  try {
    const details = fc.check(
      fc.property(
        fc.nat(),
        fc.constantFrom(...mutations),
        fc.nat(),
        fc.nat(),
        (which, mutation, pick, salt) => {
          const file = files[which % files.length]!;
          const original = readFileSync(file, 'utf8');
          writeFileSync(file, mutate(original, mutation, pick, salt));
          try {
            loadSpec({ root });
            outcome.accepted++;
          } catch (err) {
            if (!(err instanceof SpecError))
              throw new Error(
                `${mutation} of ${path.relative(work, file)}: the loader threw ${String(err)}`,
                { cause: err },
              );
            outcome.rejected++;
            const bad = badProblem(err, root);
            if (bad) throw new Error(`${mutation} of ${path.relative(work, file)}: ${bad}`);
          } finally {
            writeFileSync(file, original);
          }
        },
      ),
      { numRuns: runs, seed },
    );
    outcome.runs = details.numRuns;
    if (details.failed) {
      const cause =
        details.errorInstance instanceof Error
          ? details.errorInstance.message
          : String(details.errorInstance);
      outcome.failure = `${cause} (seed ${seed}, counterexample ${fc.stringify(details.counterexample)})`;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return outcome;
}
