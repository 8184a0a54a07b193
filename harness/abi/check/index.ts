/** ABI cross-check of the spec against real uapi headers: the library behind `npm run abi:check`. */
export { checkAgainst, formatMismatch, formatSummary, type CheckSummary, type Mismatch } from './check.ts';
export { cachedHeaderSet, hostHeaderSet, installHeaders, type HeaderSet } from './headers.ts';
export { hostArch } from './live.ts';
