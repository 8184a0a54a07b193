/**
 * Errors with stable codes, so callers (the CLI, CI scripts, tests) branch on `code`, never on wording.
 * Each code maps to one process exit status (see `exitCodeFor`).
 */
export const ErrorCode = {
  Usage: 'KVMSPEC_USAGE',
  SpecInvalid: 'KVMSPEC_SPEC_INVALID',
  PlanInvalid: 'KVMSPEC_PLAN_INVALID',
  BackendUnusable: 'KVMSPEC_BACKEND_UNUSABLE',
  BackendFailed: 'KVMSPEC_BACKEND_FAILED',
  ExpectationsInvalid: 'KVMSPEC_EXPECTATIONS_INVALID',
  ReportWrite: 'KVMSPEC_REPORT_WRITE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class KvmspecError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KvmspecError';
  }
}

/** One problem in one spec file, located by an RFC 6901 JSON pointer. */
export interface SpecProblem {
  file: string;
  pointer: string;
  message: string;
}

export class SpecError extends KvmspecError {
  constructor(readonly problems: SpecProblem[]) {
    super(ErrorCode.SpecInvalid, problems.map(formatProblem).join('\n'));
    this.name = 'SpecError';
  }
}

export function formatProblem(p: SpecProblem): string {
  return `${p.file}#${p.pointer}: ${p.message}`;
}

/** The CLI's exit statuses: 0 all as expected, 1 unexpected results, 2 usage or spec errors, 3 backend unusable. */
export const ExitCode = { Ok: 0, Unexpected: 1, Usage: 2, BackendUnusable: 3 } as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof KvmspecError) {
    switch (err.code) {
      case ErrorCode.Usage:
      case ErrorCode.SpecInvalid:
      case ErrorCode.PlanInvalid:
      case ErrorCode.ExpectationsInvalid:
        return ExitCode.Usage;
      case ErrorCode.BackendUnusable:
        return ExitCode.BackendUnusable;
      case ErrorCode.BackendFailed:
      case ErrorCode.ReportWrite:
        return ExitCode.Unexpected;
    }
  }
  return ExitCode.Unexpected;
}
