/**
 * npm run abi:check — compares every struct layout, ioctl number, constant and register id in spec/ with the
 * Linux 6.12 uapi headers of each arch (built by scripts/abi-headers.sh, cached in .cache/abi/) and with this
 * machine's installed headers. Prints one count line per arch and header set; exits 1 on any mismatch.
 * Options: --verbose lists every unconfirmed item; --no-live skips confirming newer items on /dev/kvm.
 */
import { existsSync } from 'node:fs';
import {
  cachedHeaderSet,
  checkAgainst,
  formatMismatch,
  formatSummary,
  hostArch,
  hostHeaderSet,
  installHeaders,
  type HeaderSet,
} from '../harness/abi/check/index.ts';
import { exitCodeFor } from '../harness/errors.ts';
import { loadSpec } from '../harness/spec/loader.ts';

function main(argv: string[]): number {
  const verbose = argv.includes('--verbose');
  const live = !argv.includes('--no-live');
  const spec = loadSpec();
  installHeaders([...new Set(spec.arches.map((a) => spec.archInfo(a).kernelArch))]);
  const sets: HeaderSet[] = spec.arches.map((arch) => cachedHeaderSet(arch, spec.archInfo(arch)));
  const host = hostArch();
  if (host && spec.arches.includes(host) && existsSync('/usr/include/linux/version.h'))
    sets.push(hostHeaderSet(host));
  let mismatches = 0;
  for (const set of sets) {
    const summary = checkAgainst(spec, set, { live });
    console.log(formatSummary(summary));
    for (const m of summary.mismatches) console.log(`  MISMATCH ${formatMismatch(m, set)}`);
    if (verbose)
      for (const u of summary.unconfirmed)
        console.log(`  unconfirmed (${u.reason}): ${u.label} ${u.file}#${u.pointer}`);
    mismatches += summary.mismatches.length;
  }
  if (mismatches > 0)
    console.log(
      `abi:check: ${mismatches} mismatch(es) between spec/ and the headers (the headers are the truth)`,
    );
  return mismatches > 0 ? 1 : 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = exitCodeFor(err);
}
