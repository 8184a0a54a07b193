import path from 'node:path';
import { hex } from '../../spec/int.ts';
import type { SpecTree } from '../../spec/tree.ts';
import type { HeaderSet } from './headers.ts';
import { checkItems, type CheckItem } from './items.ts';
import { confirmRegistersLive } from './live.ts';
import { runProbes } from './probe.ts';

/** A spec value the headers contradict (or that the probe could not read): always a failure. */
export interface Mismatch {
  file: string;
  pointer: string;
  label: string;
  spec: bigint;
  /** The headers' value; absent when the probe failed for another reason, given in `problem`. */
  header?: bigint;
  problem?: string;
}

/** Reasons an item counts as unconfirmed. */
export type UnconfirmedReason =
  'absent from headers' | 'not a header name' | 'computed' | 'superseded layout';

export interface CheckSummary {
  set: HeaderSet;
  checked: number;
  proposal: number;
  newer: number;
  confirmedLive: number;
  unconfirmed: { label: string; file: string; pointer: string; reason: UnconfirmedReason }[];
  mismatches: Mismatch[];
}

export interface CheckOptions {
  /** Confirm items newer than the headers on this machine's KVM where possible (default true). */
  live?: boolean;
}

/** Headers named by spec documents, as include paths ("linux/kvm.h", "asm/kvm.h"). */
function includesOf(spec: SpecTree): string[] {
  const named = [...spec.structs.values(), ...spec.constantSets.values()].flatMap(({ doc }) =>
    doc.header ? [doc.header] : [],
  );
  const includes = named.map((h) =>
    h.replace(/^(arch\/[^/]+\/)?include\/uapi\//, '').replace(/^usr\/include\//, ''),
  );
  return [...new Set(includes)].sort();
}

/** The spec file as the user sees it, for messages. */
function displayFile(spec: SpecTree, file: string): string {
  return path.relative(process.cwd(), path.join(spec.root, file)) || file;
}

/** Compares every ABI value of the spec with one set of headers and classifies what they cannot confirm. */
export function checkAgainst(spec: SpecTree, set: HeaderSet, options: CheckOptions = {}): CheckSummary {
  const items = checkItems(spec, set);
  const summary: CheckSummary = {
    set,
    checked: 0,
    proposal: 0,
    newer: 0,
    confirmedLive: 0,
    unconfirmed: [],
    mismatches: [],
  };
  const where = (item: CheckItem) => ({
    label: item.label,
    file: displayFile(spec, item.file),
    pointer: item.pointer,
  });

  // Newer items are probed too: headers that already define one with the spec's value confirm it, while a
  // different or missing value is expected of older headers and leaves the item newer, not failed.
  const probed = items.filter((i) => i.disposition.kind === 'compare' || i.disposition.kind === 'newer');
  const results = runProbes(
    probed.map((i) => i.probe),
    set,
    includesOf(spec),
  );
  const newer: CheckItem[] = [];
  probed.forEach((item, i) => {
    const result = results[i];
    const agrees = result?.kind === 'value' && result.value === BigInt.asUintN(64, item.expected);
    if (agrees) summary.checked++;
    else if (item.disposition.kind === 'newer') newer.push(item);
    else if (result?.kind === 'value')
      summary.mismatches.push({ ...where(item), spec: item.expected, header: result.value });
    else if (result?.kind === 'absent')
      summary.unconfirmed.push({
        ...where(item),
        reason: item.registerId === undefined ? 'absent from headers' : 'not a header name',
      });
    else summary.mismatches.push({ ...where(item), spec: item.expected, problem: result?.message });
  });

  summary.newer = newer.length;
  if (options.live !== false) {
    const ids = newer.flatMap((i) => (i.registerId === undefined ? [] : [i.registerId]));
    const live = confirmRegistersLive(spec, set.arch, ids);
    summary.confirmedLive = newer.filter((i) => i.registerId !== undefined && live.has(i.registerId)).length;
  }
  for (const item of items) {
    if (item.disposition.kind === 'proposal') summary.proposal++;
    if (item.disposition.kind === 'computed')
      summary.unconfirmed.push({ ...where(item), reason: 'computed' });
    if (item.disposition.kind === 'superseded')
      summary.unconfirmed.push({ ...where(item), reason: 'superseded layout' });
  }
  return summary;
}

/** The one-line count per arch and header set. */
export function formatSummary(s: CheckSummary): string {
  const reasons = new Map<string, number>();
  for (const u of s.unconfirmed) reasons.set(u.reason, (reasons.get(u.reason) ?? 0) + 1);
  const breakdown = [...reasons].map(([reason, n]) => `${reason} ${n}`).join(', ');
  return (
    `${s.set.arch} [${s.set.name}]: checked ${s.checked} / proposal ${s.proposal} / ` +
    `newer-than-headers ${s.newer} (confirmed-live ${s.confirmedLive}) / ` +
    `unconfirmed ${s.unconfirmed.length}${breakdown ? ` (${breakdown})` : ''}` +
    (s.mismatches.length > 0 ? ` / MISMATCHES ${s.mismatches.length}` : '')
  );
}

// Sizes and offsets read best in decimal, ioctl numbers and ids in hex.
const show = (v: bigint) => (v >= 0n && v < 4096n ? v.toString() : hex(v));

export function formatMismatch(m: Mismatch, set: HeaderSet): string {
  const header = m.header === undefined ? `unreadable (${m.problem ?? 'no value'})` : show(m.header);
  return `${m.file}#${m.pointer}: ${m.label} is ${show(m.spec)} in the spec but ${header} in ${set.name}`;
}
