import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { BackendError, BackendSkip, type Backend } from '../adapters/backend.ts';
import {
  processFactory,
  startProcessBackend,
  TailBuffer,
  type ProcessBackendOptions,
} from '../adapters/process.ts';
import { referenceFactory } from '../adapters/reference.ts';
import { runSuite } from '../harness/run/runner.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { recordScript } from './fixtures/backend-script.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, 'fixtures');
const examples = path.join(here, '..', 'examples');
const faulty = (mode: string, extra: Partial<ProcessBackendOptions> = {}): ProcessBackendOptions => ({
  command: [process.execPath, path.join(fixtures, 'faulty-backend.js'), mode],
  validate: true,
  timeoutMs: 3000,
  ...extra,
});

/** Starts the fixture in `mode`, sends one open, and returns what that produced. */
async function firstRequestError(mode: string, extra: Partial<ProcessBackendOptions> = {}): Promise<unknown> {
  const backend = await startProcessBackend(faulty(mode, extra));
  try {
    return await backend.open('/dev/kvm').then(
      () => undefined,
      (e: unknown) => e,
    );
  } finally {
    await backend.dispose();
  }
}

function messageOf(err: unknown): string {
  expect(err).to.be.instanceOf(BackendError);
  return (err as BackendError).message;
}

describe('process backend', () => {
  it('takes its profile from the handshake and talks to a well-behaved program', async () => {
    const backend = await startProcessBackend(faulty('good'));
    expect(backend.profile).to.deep.equal({
      arch: 'x86_64',
      implementation: 'faulty',
      version: '0.1',
      revisions: ['upstream'],
    });
    expect(await backend.open('/dev/kvm')).to.deep.equal({ handle: 3 });
    await backend.dispose();
  });

  it('refuses a program serving another arch than the one asked for', async () => {
    const factory = processFactory(faulty('good'));
    const err = await factory.create({ arch: 'arm64', revision: 'upstream' }).catch((e: unknown) => e);
    expect(messageOf(err)).to.contain('serves x86_64, not arm64');
  });

  it('passes a skip answer on as BackendSkip', async () => {
    const err = await firstRequestError('skip');
    expect(err).to.be.instanceOf(BackendSkip).with.property('message', 'not implemented here');
  });

  describe('faults, each a BackendError with a clear message', () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    before(() => process.on('unhandledRejection', record));
    after(() => {
      process.off('unhandledRejection', record);
      expect(unhandled, 'unhandled rejections').to.deep.equal([]);
    });

    it('a program that never sends its handshake', async () => {
      const err = await startProcessBackend(faulty('silent', { handshakeTimeoutMs: 300 })).catch(
        (e: unknown) => e,
      );
      expect(messageOf(err)).to.contain('no handshake from the process');
    });

    it('a program that crashes before its handshake: exit code and stderr', async () => {
      const err = await startProcessBackend(faulty('crash-at-start')).catch((e: unknown) => e);
      const message = messageOf(err);
      expect(message).to.contain('closed its output');
      expect(message).to.contain('exited with code 3');
      expect(message).to.contain('fatal: cannot open /dev/kvm');
    });

    it('a program that cannot be started', async () => {
      const err = await startProcessBackend({ command: ['/nonexistent/backend'] }).catch((e: unknown) => e);
      expect(messageOf(err)).to.contain('could not be started');
    });

    it('a program that speaks an older protocol version, with where to read what changed', async () => {
      const err = await startProcessBackend(faulty('version-1')).catch((e: unknown) => e);
      expect(messageOf(err)).to.contain('protocol version 1; this harness speaks 2');
      expect(messageOf(err)).to.contain('docs/protocol.md');
    });

    it('a crash in the middle of a request', async () => {
      const message = messageOf(await firstRequestError('crash-mid-request'));
      expect(message).to.contain('exited with code 139');
      expect(message).to.contain('segfault while handling open');
    });

    it('a hang: the per-request timeout fires', async () => {
      const message = messageOf(
        await firstRequestError('hang', { timeoutMs: 300, handshakeTimeoutMs: 10000 }),
      );
      expect(message).to.contain('no response to request 1 (open) within 300 ms');
    });

    it('garbage on stdout', async () => {
      expect(messageOf(await firstRequestError('garbage'))).to.contain(
        'sent a line that is not JSON: "Hello from a debug print!"',
      );
    });

    it('a truncated line at end of output', async () => {
      expect(messageOf(await firstRequestError('truncated'))).to.contain(
        'ended its output in the middle of a line: "{\\"seq\\":1,\\"ok\\":tr"',
      );
    });

    it('a response carrying the wrong seq', async () => {
      expect(messageOf(await firstRequestError('wrong-seq'))).to.contain(
        'answered seq 101, which is not pending (pending: 1)',
      );
    });

    it('a line past the 32 MiB default cap', async () => {
      // The program would send 64 MiB without a newline; the client gives up at its cap.
      expect(messageOf(await firstRequestError('oversized'))).to.contain('limit of 33554432 bytes');
    });

    it('stdout closed early while the program lives on', async () => {
      expect(messageOf(await firstRequestError('close-stdout'))).to.contain('closed its output');
    });

    it('a program that stops reading and then dies: the failed write says how it ended', async () => {
      const message = messageOf(await firstRequestError('close-stdin'));
      expect(message).to.contain('cannot write to the process');
      expect(message).to.contain('exited with code 5');
    });

    it('a malformed field in a response (validation on)', async () => {
      expect(messageOf(await firstRequestError('bad-field'))).to.contain('response to open is malformed');
    });

    it('a stderr flood: only the last lines are kept and shown', async () => {
      const err = await startProcessBackend(faulty('stderr-flood')).catch((e: unknown) => e);
      const message = messageOf(err);
      expect(message).to.contain('the real reason');
      expect(message).to.contain('noise line 19999');
      expect(message).not.to.contain('noise line 100 ');
      expect(message.length).to.be.below(5000);
    });
  });

  it('round-trips the reference through a child process exactly as in process', async () => {
    const spec = loadSpec();
    const direct = await referenceFactory.create({ arch: 'arm64', revision: 'upstream' });
    const expected = await recordScript(direct, spec, 'arm64');
    const factory = processFactory({
      command: [process.execPath, '--import', 'tsx', path.join(fixtures, 'serve.ts')],
      validate: true,
    });
    const remote = await factory.create({ arch: 'arm64', revision: 'upstream' });
    expect(remote.profile).to.deep.equal(direct.profile);
    expect(await recordScript(remote, spec, 'arm64')).to.deep.equal(expected);
    await remote.dispose();
  });

  describe('the whole suite through the protocol', () => {
    const outcomes = (cases: { id: string; status: string }[]) => cases.map((c) => `${c.id} ${c.status}`);

    it('passes through a served reference exactly as in process (same IDs, same outcomes)', async () => {
      const direct = await runSuite({ backend: 'reference', factory: referenceFactory });
      const served = await runSuite({
        backend: 'process',
        arches: referenceFactory.arches(),
        factory: processFactory({
          command: [process.execPath, '--import', 'tsx', path.join(fixtures, 'serve.ts')],
          validate: true,
        }),
      });
      expect(outcomes(served.results.cases)).to.deep.equal(outcomes(direct.results.cases));
      expect(served.results.totals.pass).to.equal(served.results.totals.total);
    });

    it('passes every x86_64 case against the Python example backend', async function () {
      if (spawnSync('python3', ['--version']).status !== 0) {
        console.warn('    skipped: python3 is not installed');
        this.skip();
      }
      const { results } = await runSuite({
        backend: 'process',
        arches: ['x86_64'],
        factory: processFactory({
          command: ['python3', path.join(examples, 'python-backend', 'backend.py')],
          validate: true,
        }),
      });
      const failed = results.cases
        .filter((c) => c.status !== 'pass')
        .map((c) => `${c.id}: ${c.status} ${c.message ?? ''}`);
      expect(failed).to.deep.equal([]);
      expect(results.cases.filter((c) => c.api === 'ONE_REG').length).to.be.at.least(50);
    });
  });

  it('serveOnStdio refuses an arch its backend cannot serve, and says so on stderr', async () => {
    const command = [process.execPath, '--import', 'tsx', path.join(fixtures, 'serve.ts')];
    const err = await startProcessBackend({ command }, { arch: 'riscv64' }).catch((e: unknown) => e);
    expect(messageOf(err)).to.contain("cannot serve arch 'riscv64'");
  });

  it('TailBuffer keeps the last bytes within its limit', () => {
    const tail = new TailBuffer(16);
    for (let i = 0; i < 10; i++) tail.push(Buffer.from(`line ${i}\n`));
    expect(tail.tail()).to.equal('…\nline 8\nline 9');
  });

  it('dispose stops the program', async () => {
    const backend: Backend = await startProcessBackend(faulty('hang'));
    const started = Date.now();
    await backend.dispose();
    expect(Date.now() - started).to.be.below(4000);
  });
});
