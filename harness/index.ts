// kvmspec as a library (the package's entry point): what the command line is built on, for a VMM's own test
// runner or CI script that wants results as data rather than files. Everything else is internal.

// Running the suite and writing its reports.
export {
  runSuite,
  planRun,
  writeReports,
  DEFAULT_TIMEOUT_MS,
  type ReportPaths,
  type RunOptions,
  type RunOutcome,
} from './run/runner.ts';
export { runParallel } from './run/parallel.ts';
export {
  runIsAsExpected,
  type Attempt,
  type CaseResult,
  type MatchedExpectation,
  type RunResults,
} from './run/results.ts';
export type { Divergence } from './run/diff.ts';
export { verifyResults, type Verdict } from './run/verify.ts';
export { mergeResults } from './report/merge.ts';

// The spec.
export { loadSpec, type LoadOptions } from './spec/loader.ts';
export type { SpecTree } from './spec/tree.ts';
export type { Arch } from './spec/types.ts';
export type { Selection } from './plan/select.ts';
export type { PlannedCase, Status } from './plan/types.ts';

// Backends: the contract an implementation is driven through, and the bundled ones by name.
export type {
  AllocRequest,
  Backend,
  BackendFactory,
  BackendProfile,
  BufferId,
  Handle,
  IoctlArg,
  IoctlResult,
  PointerPatch,
  PointerTarget,
} from '../adapters/backend.ts';
export { BackendError, BackendSkip } from '../adapters/backend.ts';
export { backendFactory, backendNames } from '../adapters/registry.ts';
export { createReferenceBackend } from '../adapters/reference.ts';

// Errors with stable codes, and the exit codes the command line maps them to.
export { ErrorCode, ExitCode, KvmspecError, SpecError, exitCodeFor } from './errors.ts';
