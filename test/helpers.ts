import { Writable } from 'node:stream';
import { main } from '../harness/cli/main.ts';

/** Runs the CLI in process and captures what it prints. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (append: (s: string) => void) =>
    Object.assign(
      new Writable({
        write(chunk: Buffer, _enc, done) {
          append(chunk.toString());
          done();
        },
      }),
      { isTTY: false, columns: 80 },
    ) as unknown as NodeJS.WriteStream;
  const code = await main(
    args,
    sink((s) => (out += s)),
    sink((s) => (err += s)),
  );
  return { code, out, err };
}
