import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { expect } from 'chai';
import {
  BackendError,
  BackendSkip,
  type AllocRequest,
  type Backend,
  type BackendProfile,
  type IoctlArg,
  type IoctlResult,
} from '../adapters/backend.ts';
import { ProtocolClient } from '../adapters/protocol/client.ts';
import { decodeBytes, encodeArg, encodeBytes, type Op } from '../adapters/protocol/messages.ts';
import { connectBackend } from '../adapters/protocol/remote-backend.ts';
import { handshakeProblem, requestProblem, responseProblem } from '../adapters/protocol/validation.ts';
import { referenceFactory } from '../adapters/reference.ts';
import { serveBackend } from '../adapters/serve.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { ARCHES } from '../harness/spec/types.ts';
import { recordScript } from './fixtures/backend-script.ts';
import { packageRoot } from '../harness/paths.ts';

const THROW_REQUEST = 0xdeadn;
const SKIP_REQUEST = 0x5c19n;

/** A backend that records what reached it and answers from a script, so conversions can be checked exactly. */
class RecordingBackend implements Backend {
  readonly profile: BackendProfile = {
    arch: 's390x',
    implementation: 'recording',
    version: '1.0',
    revisions: ['upstream'],
    capabilities: { KVM_CAP_ONE_REG: 1 },
  };
  readonly calls: unknown[] = [];
  disposed = false;
  private readonly memory = new Map<number, Uint8Array>();

  open(path: string): Promise<{ handle: number } | { errno: string }> {
    this.calls.push(['open', path]);
    return Promise.resolve(path === '/dev/kvm' ? { handle: 3 } : { errno: 'ENOENT' });
  }
  ioctl(handle: number, request: bigint, arg: IoctlArg): Promise<IoctlResult> {
    this.calls.push(['ioctl', handle, request, arg]);
    if (request === THROW_REQUEST) throw new Error('model bug');
    if (request === SKIP_REQUEST) return Promise.reject(new BackendSkip('no s390 MEM_OP here'));
    if (arg.kind === 'struct') {
      const image = arg.image.slice();
      image[0] = 0xff;
      return Promise.resolve({ ret: 0n, errno: null, image, spans: [Uint8Array.of(1, 2)] });
    }
    if (arg.kind === 'pointer') return Promise.resolve({ ret: -1n, errno: 'EFAULT', spans: [] });
    return Promise.resolve({ ret: arg.value, errno: null, spans: [] });
  }
  close(handle: number): Promise<void> {
    this.calls.push(['close', handle]);
    return Promise.resolve();
  }
  alloc(request: AllocRequest): Promise<number> {
    this.calls.push(['alloc', request]);
    // Ids of its own, unlike the harness's names for the same buffers: serve must translate.
    const id = this.memory.size + 100;
    const bytes = new Uint8Array(request.size);
    if (request.init) bytes.set(request.init);
    this.memory.set(id, bytes);
    return Promise.resolve(id);
  }
  read(buffer: number, offset: number, length: number): Promise<Uint8Array> {
    const bytes = this.memory.get(buffer);
    // Thrown synchronously, as the reference does: serve must still answer with an error.
    if (!bytes || offset > bytes.length) throw new BackendError(`nothing at ${offset} in buffer ${buffer}`);
    return Promise.resolve(bytes.slice(offset, offset + length));
  }
  write(buffer: number, offset: number, data: Uint8Array): Promise<void> {
    this.memory.get(buffer)?.set(data, offset);
    return Promise.resolve();
  }
  free(buffer: number): Promise<void> {
    this.memory.delete(buffer);
    return Promise.resolve();
  }
  mmap(handle: number, length: number, offset: number): Promise<number> {
    this.calls.push(['mmap', handle, length, offset]);
    return Promise.resolve(99);
  }
  dispose(): Promise<void> {
    this.disposed = true;
    return Promise.resolve();
  }
}

/** A served backend and a validating client joined by two in-memory pipes. */
async function pair(backend: Backend) {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const served = serveBackend(backend, toServer, toClient);
  const remote = await connectBackend(toClient, toServer, { validate: true, timeoutMs: 2000 });
  return { remote, served };
}

describe('stdio protocol', () => {
  describe('schemas', () => {
    it('accept one example of every message kind', () => {
      expect(
        handshakeProblem({
          kvmspec: 'backend',
          protocol: 2,
          profile: {
            arch: 'arm64',
            implementation: 'kvmspec-agent',
            version: '6.12',
            revisions: ['upstream'],
          },
        }),
      ).to.equal(undefined);
      const target = { kind: 'buffer', buffer: 1, offset: 0, length: 8 };
      const requests = [
        { seq: 1, op: 'open', path: '/dev/kvm' },
        { seq: 2, op: 'ioctl', handle: 3, request: '0x4010aeab', arg: { int: '0x46' } },
        { seq: 3, op: 'ioctl', handle: 3, request: '0x4010aeab', arg: { pointer: { kind: 'null' } } },
        {
          seq: 4,
          op: 'ioctl',
          handle: 3,
          request: '0x4010aeab',
          arg: { struct: { image: 'AAAAAAAAAAA=', pointers: [{ offset: 8, target }] } },
        },
        { seq: 5, op: 'close', handle: 3 },
        { seq: 6, op: 'alloc', buffer: 1, size: 8, alignment: 4096, init: 'AQI=', readonly: true },
        { seq: 7, op: 'read', buffer: 1, offset: 0, length: 8 },
        { seq: 8, op: 'write', buffer: 1, offset: 0, data: 'AQI=' },
        { seq: 9, op: 'free', buffer: 1 },
        { seq: 10, op: 'mmap', buffer: 2, handle: 5, length: 4096, offset: 0 },
        { seq: 11, op: 'shutdown' },
      ];
      for (const r of requests) expect(requestProblem(r), JSON.stringify(r)).to.equal(undefined);
      expect(responseProblem('open', { seq: 1, ok: true, errno: 'ENOENT' })).to.equal(undefined);
      expect(responseProblem('ioctl', { seq: 2, ok: true, ret: -1, errno: 'EINVAL', spans: [] })).to.equal(
        undefined,
      );
      expect(responseProblem('mmap', { seq: 3, ok: true })).to.equal(undefined);
      expect(responseProblem('alloc', { seq: 3, ok: true })).to.equal(undefined);
      expect(
        responseProblem('read', { seq: 4, ok: false, error: { kind: 'skip', message: 'why' } }),
      ).to.equal(undefined);
    });

    it('accept every example message on docs/protocol.md', () => {
      const page = readFileSync(path.join(packageRoot, 'docs', 'protocol.md'), 'utf8');
      const examples = [...page.matchAll(/```jsonl\n([\s\S]*?)```/g)].flatMap((m) =>
        m[1]!
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      );
      expect(examples.length).to.be.above(20);
      let op: Op = 'open';
      for (const message of examples) {
        if ('kvmspec' in message) {
          expect(handshakeProblem(message)).to.equal(undefined);
        } else if ('op' in message) {
          op = message.op as Op;
          expect(requestProblem(message), JSON.stringify(message)).to.equal(undefined);
        } else {
          // A response follows the request it answers on the page.
          expect(responseProblem(op, message), JSON.stringify(message)).to.equal(undefined);
        }
      }
    });

    it('name the field at fault in a malformed request or response', () => {
      expect(requestProblem({ seq: 1, op: 'read', buffer: 1, offset: 0 })).to.contain("'length'");
      expect(
        requestProblem({ seq: 1, op: 'ioctl', handle: 3, request: 4096, arg: { int: '0x1' } }),
      ).to.contain('/request');
      expect(requestProblem({ seq: 1, op: 'reboot' })).to.contain('/op');
      // Version 1's alloc: the backend chose the id.
      expect(requestProblem({ seq: 1, op: 'alloc', size: 8 })).to.contain("'buffer'");
      expect(responseProblem('alloc', { seq: 1, ok: true, buffer: 1 })).to.contain('buffer');
      expect(responseProblem('ioctl', { seq: 2, ok: true, ret: 0, errno: null })).to.contain("'spans'");
      expect(responseProblem('open', { seq: 2, ok: true, handle: 3, errno: 'ENOENT' })).to.be.a('string');
    });
  });

  describe('bytes', () => {
    it('round-trip through base64 and reject what is not base64', () => {
      const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
      expect(decodeBytes(encodeBytes(bytes))).to.deep.equal(bytes);
      expect(decodeBytes(encodeBytes(bytes.subarray(5, 9)))).to.deep.equal(bytes.subarray(5, 9));
      expect(() => decodeBytes('AQ*=')).to.throw(RangeError);
      expect(() => decodeBytes('AQI')).to.throw(RangeError);
    });
  });

  describe('serveBackend ↔ ProtocolClient over in-memory streams', () => {
    it('carries every operation one to one, with schema validation on both directions', async () => {
      const backend = new RecordingBackend();
      const { remote, served } = await pair(backend);
      expect(remote.profile).to.deep.equal(backend.profile);
      expect(await remote.open('/dev/kvm')).to.deep.equal({ handle: 3 });
      expect(await remote.open('/dev/nope')).to.deep.equal({ errno: 'ENOENT' });
      expect(await remote.ioctl(3, 0xae03n, { kind: 'int', value: 70n })).to.deep.equal({
        ret: 70n,
        errno: null,
        spans: [],
      });
      expect(await remote.ioctl(3, 0xae03n, { kind: 'int', value: -1n })).to.include({ ret: -1n });
      expect(
        await remote.ioctl(4, 0x4010aeabn, { kind: 'pointer', target: { kind: 'invalid' } }),
      ).to.deep.equal({
        ret: -1n,
        errno: 'EFAULT',
        spans: [],
      });
      const buffer = await remote.alloc({
        size: 4,
        alignment: 4096,
        init: Uint8Array.of(9, 8),
        readonly: true,
      });
      const pointers = [{ offset: 8, target: { kind: 'buffer' as const, buffer, offset: 0, length: 2 } }];
      const image = new Uint8Array(16);
      const r = await remote.ioctl(4, 0x4010aeabn, { kind: 'struct', image, pointers });
      expect(r.image?.[0]).to.equal(0xff);
      expect(r.spans).to.deep.equal([Uint8Array.of(1, 2)]);
      await remote.write(buffer, 2, Uint8Array.of(7));
      expect(await remote.read(buffer, 0, 4)).to.deep.equal(Uint8Array.of(9, 8, 7, 0));
      expect(buffer).to.equal(1);
      expect(await remote.mmap(4, 4096, 0)).to.equal(2);
      await remote.free(buffer);
      await remote.close(4);
      expect(backend.calls).to.deep.equal([
        ['open', '/dev/kvm'],
        ['open', '/dev/nope'],
        ['ioctl', 3, 0xae03n, { kind: 'int', value: 70n }],
        ['ioctl', 3, 0xae03n, { kind: 'int', value: -1n }],
        ['ioctl', 4, 0x4010aeabn, { kind: 'pointer', target: { kind: 'invalid' } }],
        ['alloc', { size: 4, alignment: 4096, init: Uint8Array.of(9, 8), readonly: true }],
        // The backend sees its own id for the buffer the harness named 1.
        [
          'ioctl',
          4,
          0x4010aeabn,
          {
            kind: 'struct',
            image,
            pointers: [{ offset: 8, target: { ...pointers[0]!.target, buffer: 100 } }],
          },
        ],
        ['mmap', 4, 4096, 0],
        ['close', 4],
      ]);
      await remote.dispose();
      await served;
      expect(backend.disposed).to.equal(true);
    });

    it('pipelines requests and matches each response to its request', async () => {
      const { remote, served } = await pair(new RecordingBackend());
      const values = Array.from({ length: 200 }, (_, i) => BigInt(i));
      const results = await Promise.all(
        values.map((value) => remote.ioctl(3, 0xae03n, { kind: 'int', value })),
      );
      expect(results.map((r) => r.ret)).to.deep.equal(values);
      await remote.dispose();
      await served;
    });

    it('turns backend exceptions into error responses and skips into BackendSkip, and keeps serving', async () => {
      const { remote, served } = await pair(new RecordingBackend());
      const thrown = await remote
        .ioctl(3, THROW_REQUEST, { kind: 'int', value: 0n })
        .catch((e: unknown) => e);
      expect(thrown).to.be.instanceOf(BackendError).with.property('message').that.contains('model bug');
      const skipped = await remote
        .ioctl(3, SKIP_REQUEST, { kind: 'int', value: 0n })
        .catch((e: unknown) => e);
      expect(skipped).to.be.instanceOf(BackendSkip).with.property('message', 'no s390 MEM_OP here');
      const buffer = await remote.alloc({ size: 4 });
      const syncThrow = await remote.read(buffer, 8, 1).catch((e: unknown) => e);
      expect(syncThrow)
        .to.be.instanceOf(BackendError)
        .with.property('message')
        .that.contains('nothing at 8 in buffer 100');
      const unknown = await remote.read(42, 0, 1).catch((e: unknown) => e);
      expect(unknown)
        .to.be.instanceOf(BackendError)
        .with.property('message')
        .that.contains('unknown buffer 42');
      expect(await remote.open('/dev/kvm')).to.deep.equal({ handle: 3 });
      await remote.dispose();
      await served;
    });
  });

  describe('the reference served over in-memory streams', () => {
    const spec = loadSpec();
    for (const arch of ARCHES) {
      it(`${arch}: answers a script exactly as in process`, async () => {
        const direct = await referenceFactory.create({ arch, revision: 'upstream' });
        const expected = await recordScript(direct, spec, arch);
        await direct.dispose();
        const { remote, served } = await pair(await referenceFactory.create({ arch, revision: 'upstream' }));
        expect(remote.profile).to.deep.equal(direct.profile);
        const actual = await recordScript(remote, spec, arch);
        await remote.dispose();
        await served;
        expect(actual).to.deep.equal(expected);
        expect(expected.length).to.be.above(20);
      });
    }
  });

  describe('serveBackend on raw lines', () => {
    async function exchange(lines: string[]): Promise<unknown[]> {
      const input = new PassThrough();
      const output = new PassThrough();
      const chunks: Buffer[] = [];
      output.on('data', (c: Buffer) => chunks.push(c));
      const served = serveBackend(new RecordingBackend(), input, output);
      input.end(lines.map((l) => `${l}\n`).join(''));
      await served;
      return Buffer.concat(chunks)
        .toString('utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown);
    }

    it('answers malformed requests with an error naming the problem and goes on', async () => {
      const [handshake, ...responses] = await exchange([
        'not json at all',
        '{"seq":1,"op":"open"}',
        '{"seq":2,"op":"fly"}',
        '{"seq":3,"op":"ioctl","handle":3,"request":"0xae03","arg":{"int":70}}',
        '{"seq":4,"op":"open","path":"/dev/kvm"}',
      ]);
      expect(handshake).to.have.property('protocol', 2);
      expect(responses).to.have.length(5);
      const [notJson, noPath, badOp, badInt, good] = responses as Record<string, unknown>[];
      expect(notJson).to.deep.include({ seq: null, ok: false });
      expect(JSON.stringify(notJson)).to.contain('not JSON');
      expect(noPath).to.deep.include({ seq: 1, ok: false });
      expect(JSON.stringify(noPath)).to.contain("'path'");
      expect(JSON.stringify(badOp)).to.contain('/op');
      expect(JSON.stringify(badInt)).to.contain('/arg');
      expect(good).to.deep.equal({ seq: 4, ok: true, handle: 3 });
      for (const r of responses) expect(responseProblem('open', r), JSON.stringify(r)).to.equal(undefined);
    });

    it('keeps buffers under the names the harness chose and refuses a name in use', async () => {
      const [, ...responses] = await exchange([
        '{"seq":1,"op":"alloc","buffer":5,"size":2,"init":"AQI="}',
        '{"seq":2,"op":"alloc","buffer":5,"size":8}',
        '{"seq":3,"op":"mmap","buffer":5,"handle":4,"length":4096,"offset":0}',
        '{"seq":4,"op":"read","buffer":5,"offset":0,"length":2}',
        '{"seq":5,"op":"free","buffer":5}',
        '{"seq":6,"op":"read","buffer":5,"offset":0,"length":2}',
        '{"seq":7,"op":"alloc","buffer":5,"size":8}',
      ]);
      const [made, again, mapped, read, freed, gone, remade] = responses as Record<string, unknown>[];
      expect(made).to.deep.equal({ seq: 1, ok: true });
      expect(JSON.stringify(again)).to.contain('buffer 5 is already in use');
      expect(JSON.stringify(mapped)).to.contain('buffer 5 is already in use');
      expect(read).to.deep.equal({ seq: 4, ok: true, data: 'AQI=' });
      expect(freed).to.deep.equal({ seq: 5, ok: true });
      expect(JSON.stringify(gone)).to.contain('unknown buffer 5');
      expect(remade).to.deep.equal({ seq: 7, ok: true });
    });

    it('answers shutdown after disposing the backend, then ends its output', async () => {
      const responses = await exchange([
        '{"seq":1,"op":"shutdown"}',
        '{"seq":2,"op":"open","path":"/dev/kvm"}',
      ]);
      expect(responses.slice(1)).to.deep.equal([{ seq: 1, ok: true }]);
    });
  });

  describe('RemoteBackend names buffers and does not wait for allocs', () => {
    const handshake =
      '{"kvmspec":"backend","protocol":2,"profile":{"arch":"x86_64","implementation":"t","version":"1","revisions":["upstream"]}}\n';
    const getOneReg = 0x4010aeabn;

    /** A RemoteBackend facing a peer this test scripts: `writes` holds the request lines of each write. */
    async function scripted() {
      const fromPeer = new PassThrough();
      const writes: Record<string, unknown>[][] = [];
      const lines = (chunk: unknown) =>
        String(chunk)
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      const toPeer = new Writable({
        writev(chunks, done) {
          writes.push(chunks.flatMap((c) => lines(c.chunk)));
          done();
        },
        write(chunk, _enc, done) {
          writes.push(lines(chunk));
          done();
        },
      });
      fromPeer.write(handshake);
      const remote = await connectBackend(fromPeer, toPeer, { validate: true, timeoutMs: 2000 });
      // As a real peer would, it answers once the requests have left (the client sends them at the end of the tick).
      const answer = async (...responses: object[]) => {
        await new Promise((resolve) => setImmediate(resolve));
        fromPeer.write(responses.map((r) => `${JSON.stringify(r)}\n`).join(''));
      };
      return { remote, writes, answer };
    }
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    const failed = (seq: number, kind: string, message: string) => ({
      seq,
      ok: false,
      error: { kind, message },
    });
    const into = (buffer: number): IoctlArg => ({
      kind: 'pointer',
      target: { kind: 'buffer', buffer, offset: 0, length: 8 },
    });

    it('sends an alloc and the call that uses it in one write, before any answer', async () => {
      const { remote, writes, answer } = await scripted();
      const buffer = await remote.alloc({ size: 8, init: Uint8Array.of(1) });
      const call = remote.ioctl(3, getOneReg, into(buffer));
      await tick();
      expect(writes).to.deep.equal([
        [
          { seq: 1, op: 'alloc', buffer, size: 8, init: 'AQ==' },
          { seq: 2, op: 'ioctl', handle: 3, request: '0x4010aeab', arg: encodeArg(into(buffer)) },
        ],
      ]);
      await answer({ seq: 1, ok: true }, { seq: 2, ok: true, ret: 0, errno: null, spans: ['AQAAAAAAAAA='] });
      expect((await call).spans).to.deep.equal([Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0)]);
      expect(await remote.alloc({ size: 8 })).to.equal(buffer + 1);
    });

    it("fails the next answered request with the peer's message when an alloc fails, and frees nothing for it", async () => {
      const { remote, writes, answer } = await scripted();
      const buffer = await remote.alloc({ size: 8 });
      const unrelated = remote.ioctl(3, 0xae03n, { kind: 'int', value: 1n });
      await answer(failed(1, 'backend', 'mmap of 4096 bytes failed: ENOMEM'), {
        seq: 2,
        ok: true,
        ret: 1,
        errno: null,
        spans: [],
      });
      const err = await unrelated.catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BackendError).with.property('message').that.contains('failed: ENOMEM');
      await remote.free(buffer);
      const next = remote.close(3);
      await answer({ seq: 3, ok: true });
      await next;
      expect(writes.flat().map((r) => r.op)).to.deep.equal(['alloc', 'ioctl', 'close']);
    });

    it('reports a skipped alloc as a skip, in place of the error of the call that named its buffer', async () => {
      const { remote, answer } = await scripted();
      const buffer = await remote.alloc({ size: 8, readonly: true });
      const call = remote.ioctl(3, getOneReg, into(buffer));
      await answer(
        failed(1, 'skip', 'no read-only memory here'),
        failed(2, 'backend', `unknown buffer ${buffer}`),
      );
      const err = await call.catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BackendSkip).with.property('message', 'no read-only memory here');
    });

    it("reports a failed alloc that nothing followed at the free of its buffer (a case's release)", async () => {
      const { remote, answer } = await scripted();
      const buffer = await remote.alloc({ size: 8 });
      await answer(failed(1, 'backend', 'alignment 3 is not a power of two'));
      await tick();
      const free = remote.free(buffer);
      await answer(failed(2, 'backend', `unknown buffer ${buffer}`));
      const err = await free.catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BackendError).with.property('message').that.contains('not a power of two');
    });

    it('waits for an alloc a peer answers after a later request', async () => {
      const { remote, answer } = await scripted();
      await remote.alloc({ size: 8 });
      const call = remote.ioctl(3, 0xae03n, { kind: 'int', value: 1n });
      await answer({ seq: 2, ok: true, ret: 1, errno: null, spans: [] });
      await tick();
      await answer(failed(1, 'backend', 'out of memory'));
      const err = await call.catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BackendError).with.property('message').that.contains('out of memory');
    });
  });

  describe('ProtocolClient against a misbehaving peer', () => {
    function peer() {
      const fromPeer = new PassThrough();
      const toPeer = new PassThrough();
      const client = new ProtocolClient(fromPeer, toPeer, { timeoutMs: 200 });
      return { client, fromPeer };
    }
    const handshakeLine =
      '{"kvmspec":"backend","protocol":2,"profile":{"arch":"x86_64","implementation":"t","version":"1","revisions":["upstream"]}}\n';

    it('rejects a handshake of another protocol version', async () => {
      const { client, fromPeer } = peer();
      fromPeer.write(handshakeLine.replace('"protocol":2', '"protocol":1'));
      const err = await client.handshake().catch((e: unknown) => e);
      expect(err)
        .to.be.instanceOf(BackendError)
        .with.property('message')
        .that.contains('protocol version 1; this harness speaks 2');
    });

    it('rejects a handshake with a malformed profile, naming the field', async () => {
      const { client, fromPeer } = peer();
      fromPeer.write(handshakeLine.replace('x86_64', 'riscv64'));
      const err = await client.handshake().catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BackendError).with.property('message').that.contains('/profile/arch');
    });

    it('fails a request whose response never comes, and every request after it', async () => {
      const { client, fromPeer } = peer();
      fromPeer.write(handshakeLine);
      await client.handshake();
      const err = await client.request({ op: 'open', path: '/dev/kvm' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BackendError).with.property('message').that.contains('within 200 ms');
      const later = await client.request({ op: 'close', handle: 3 }).catch((e: unknown) => e);
      expect(later).to.equal(err);
    });

    it('times out a later request that hangs after earlier ones were answered', async () => {
      const { client, fromPeer } = peer();
      fromPeer.write(handshakeLine);
      await client.handshake();
      const first = client.request({ op: 'close', handle: 3 });
      fromPeer.write('{"seq":1,"ok":true}\n');
      await first;
      await new Promise((resolve) => setTimeout(resolve, 150));
      const started = performance.now();
      const err = await client.request({ op: 'close', handle: 4 }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(BackendError).with.property('message').that.contains('request 2 (close)');
      // Its own 200 ms, not what was left of the first request's.
      expect(performance.now() - started).to.be.at.least(190);
    });

    it('sends the requests of one tick in one write', async () => {
      const fromPeer = new PassThrough();
      const writes: number[] = [];
      const toPeer = new Writable({
        writev(chunks, done) {
          writes.push(chunks.length);
          done();
        },
        write(_chunk, _enc, done) {
          writes.push(1);
          done();
        },
      });
      const client = new ProtocolClient(fromPeer, toPeer);
      fromPeer.write(handshakeLine);
      await client.handshake();
      const batch = Array.from({ length: 50 }, (_, i) => client.request({ op: 'close', handle: i }));
      await new Promise((resolve) => setImmediate(resolve));
      expect(writes).to.deep.equal([50]);
      fromPeer.write(Array.from({ length: 50 }, (_, i) => `{"seq":${i + 1},"ok":true}\n`).join(''));
      await Promise.all(batch);
    });

    it('fails on a line longer than its limit without buffering the rest', async () => {
      const fromPeer = new PassThrough();
      const client = new ProtocolClient(fromPeer, new PassThrough(), { maxLineBytes: 1024 });
      fromPeer.write(handshakeLine);
      await client.handshake();
      const pending = client.request({ op: 'open', path: '/dev/kvm' });
      for (let i = 0; i < 10; i++) fromPeer.write('x'.repeat(200));
      const err = await pending.catch((e: unknown) => e);
      expect(err)
        .to.be.instanceOf(BackendError)
        .with.property('message')
        .that.contains('limit of 1024 bytes');
    });
  });
});
