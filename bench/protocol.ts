// A protocol round trip (the reference served by `kvmspec serve` in a child process) against a raw pipe
// echo of the same request bytes through a child node process; and pipelined calls per second.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { once } from 'node:events';
import type { Backend } from '../adapters/backend.ts';
import { startProcessBackend } from '../adapters/process.ts';
import type { SpecTree } from '../harness/spec/tree.ts';
import { costRatio, measure, measurePairs, REPETITIONS, type Ratio } from './measure.ts';

const root = path.resolve(import.meta.dirname, '..');

/** A child that copies stdin to stdout; `trip` sends `line` and resolves at its echo. */
function echoChild(line: string) {
  const child = spawn(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let waiting: (() => void) | undefined;
  let pendingBytes = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    pendingBytes += chunk;
    if (pendingBytes.endsWith('\n')) {
      pendingBytes = '';
      waiting?.();
    }
  });
  return {
    trip: () =>
      new Promise<void>((resolve) => {
        waiting = resolve;
        child.stdin.write(line);
      }),
    close: async () => {
      child.stdin.end();
      await once(child, 'close');
    },
  };
}

export interface ProtocolFigures {
  roundTrip: Ratio;
  pipelinedCallsPerSecond: number;
  pipelinedTargetMet: boolean;
}

export async function protocolBench(spec: SpecTree, calls: number): Promise<ProtocolFigures> {
  const backend: Backend = await startProcessBackend(
    {
      command: [
        process.execPath,
        path.join(root, 'bin/kvmspec.js'),
        'serve',
        '--backend',
        'reference',
        '--arch',
        'x86_64',
      ],
      timeoutMs: 60000,
      handshakeTimeoutMs: 60000,
    },
    { arch: 'x86_64' },
  );
  try {
    const opened = await backend.open('/dev/kvm');
    if (!('handle' in opened)) throw new Error(`open /dev/kvm: ${opened.errno}`);
    const request = spec.ioctlNumber('KVM_CHECK_EXTENSION', 'x86_64');
    const cap = spec.constant('KVM_CAP_ONE_REG', 'x86_64');
    const call = () => backend.ioctl(opened.handle, request, { kind: 'int', value: cap });
    // The bytes the client sends for this call, so the echo moves the same line.
    const line = `${JSON.stringify({ seq: 123456, op: 'ioctl', handle: opened.handle, request: `0x${request.toString(16)}`, arg: { int: `0x${cap.toString(16)}` } })}\n`;
    const echo = echoChild(line);
    try {
      for (let i = 0; i < 1000; i++) {
        await call();
        await echo.trip();
      } // warm all three ends
      // Alternated repetition by repetition (see measurePairs): a slow spell of the machine slows both.
      const paired = await measurePairs(
        REPETITIONS,
        async () => {
          for (let i = 0; i < calls; i++) await call();
        },
        async () => {
          for (let i = 0; i < calls; i++) await echo.trip();
        },
      );
      const batch = 1000;
      const pipelined = await measure(1, async () => {
        for (let done = 0; done < calls * 5; done += batch)
          await Promise.all(Array.from({ length: batch }, call));
      });
      const perSecond = (calls * 5) / (pipelined.ms / 1000);
      return {
        roundTrip: costRatio(
          'protocol round trip (KVM_CHECK_EXTENSION) vs raw pipe echo of the same line',
          (paired.ours.ms * 1e6) / calls,
          (paired.baseline.ms * 1e6) / calls,
          'ns/call',
          1.5,
          paired.ratio,
        ),
        pipelinedCallsPerSecond: Math.round(perSecond),
        pipelinedTargetMet: perSecond >= 50000,
      };
    } finally {
      await echo.close();
    }
  } finally {
    await backend.dispose();
  }
}
