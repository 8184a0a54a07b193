import { describeByteDifference } from '../abi/bytes.ts';
import type { CallRecord } from '../session.ts';
import type { CaseResult } from './results.ts';

/** One place where two backends ran the same case differently. */
export interface Divergence {
  /** Which call of the case (1-based), or 0 for the case's status. */
  call: number;
  ioctl: string;
  what: 'status' | 'calls' | 'ioctl' | 'ret' | 'errno' | 'image' | `buffer ${string}`;
  ours: string;
  theirs: string;
}

function calls(c: CaseResult): CallRecord[] {
  return (c.trace ?? []).flatMap((t) => (t.call ? [t.call] : []));
}

/**
 * Compares a case as the backend under test ran it with the same case on the other backend: status,
 * then call by call the ioctl, return value, errno, struct image and every pointed-to buffer. Values of
 * host-dependent calls (and of every call in a host-dependent rule) are left out; ret and errno never.
 */
export function compareCase(ours: CaseResult, theirs: CaseResult, ruleHostDependent: boolean): Divergence[] {
  const out: Divergence[] = [];
  // A host-dependent case may not apply on one host (a CPU feature it lacks): that is no divergence.
  const notRun = (st: string) => st === 'skip' || st === 'not-applicable';
  if (
    ours.status !== theirs.status &&
    !(ruleHostDependent && (notRun(ours.status) || notRun(theirs.status)))
  ) {
    out.push({ call: 0, ioctl: '', what: 'status', ours: ours.status, theirs: theirs.status });
  }
  const a = calls(ours);
  const b = calls(theirs);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y) break;
    const at = { call: i + 1, ioctl: x.ioctl };
    if (x.ioctl !== y.ioctl) {
      // The cases took different paths; later calls no longer line up.
      out.push({ ...at, what: 'ioctl', ours: x.ioctl, theirs: y.ioctl });
      return out;
    }
    // A host-dependent rule's return values are host values (a mmap size): only success or failure must agree.
    const ret = (r: string) => (ruleHostDependent && !r.startsWith('-') ? 'ok' : r);
    if (ret(x.ret) !== ret(y.ret)) out.push({ ...at, what: 'ret', ours: x.ret, theirs: y.ret });
    if (x.errno !== y.errno)
      out.push({ ...at, what: 'errno', ours: String(x.errno), theirs: String(y.errno) });
    if (ruleHostDependent || x.hostDependent || y.hostDependent) continue;
    if ((x.image ?? '') !== (y.image ?? ''))
      out.push({ ...at, what: 'image', ...hexDifference(x.image, y.image) });
    for (const field of new Set([...Object.keys(x.spans ?? {}), ...Object.keys(y.spans ?? {})])) {
      const p = x.spans?.[field] ?? '';
      const q = y.spans?.[field] ?? '';
      if (p !== q) out.push({ ...at, what: `buffer ${field}`, ...hexDifference(p, q) });
    }
  }
  // How many calls a host-dependent rule makes follows the host (one read per listed MSR).
  if (a.length !== b.length && !ruleHostDependent) {
    out.push({
      call: Math.min(a.length, b.length) + 1,
      ioctl: '',
      what: 'calls',
      ours: String(a.length),
      theirs: String(b.length),
    });
  }
  return out;
}

/** Two recorded byte strings (hex) that differ, as a divergence shows them: long ones around the first difference. */
function hexDifference(ours = '', theirs = ''): { ours: string; theirs: string } {
  const d = describeByteDifference(Buffer.from(ours, 'hex'), Buffer.from(theirs, 'hex'));
  return { ours: d.ours, theirs: d.theirs };
}
