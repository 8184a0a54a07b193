import type { Readable, Writable } from 'node:stream';

export const DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024;

export interface LineHandlers {
  line(text: string): void;
  /** The stream ended; `partial` holds bytes after the last newline (a truncated line), if any. */
  end(partial: Buffer | undefined): void;
  /** A line grew past the limit or the stream failed; no more lines follow. */
  error(message: string): void;
}

/**
 * Splits a byte stream into '\n'-terminated UTF-8 lines without holding more than `maxLineBytes` of an
 * unfinished line, so a peer that never sends a newline cannot exhaust memory. Returns a function that
 * detaches the reader from the stream.
 */
export function readLines(input: Readable, maxLineBytes: number, handlers: LineHandlers): () => void {
  let parts: Buffer[] = [];
  let pending = 0;
  let stopped = false;

  const stop = () => {
    stopped = true;
    input.off('data', onData);
    input.off('end', onEnd);
    input.off('error', onError);
    input.off('close', onEnd);
  };
  const tooLong = (length: number) => {
    stop();
    handlers.error(
      `line longer than the limit of ${maxLineBytes} bytes (at least ${length} bytes without a newline)`,
    );
  };
  const onData = (chunk: Buffer | string) => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    while (!stopped) {
      const nl = bytes.indexOf(10, start);
      if (nl < 0) break;
      const length = pending + nl - start;
      if (length > maxLineBytes) return tooLong(length);
      parts.push(bytes.subarray(start, nl));
      const line = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
      parts = [];
      pending = 0;
      start = nl + 1;
      const text = line.toString('utf8');
      handlers.line(text.endsWith('\r') ? text.slice(0, -1) : text);
    }
    if (stopped || start >= bytes.length) return;
    pending += bytes.length - start;
    if (pending > maxLineBytes) return tooLong(pending);
    parts.push(bytes.subarray(start));
  };
  const onEnd = () => {
    if (stopped) return;
    stop();
    handlers.end(pending > 0 ? Buffer.concat(parts, pending) : undefined);
  };
  const onError = (err: Error) => {
    if (stopped) return;
    stop();
    handlers.error(`stream error: ${err.message}`);
  };
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('error', onError);
  // A destroyed stream closes without 'end'; for the reader that is the same as end of input.
  input.on('close', onEnd);
  return stop;
}

/** A line cut to a readable length for error messages. */
export function preview(text: string, max = 160): string {
  const flat = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
  return text.length > max ? `${flat} (${text.length} characters)` : flat;
}

/**
 * A writer of protocol lines that sends everything written in one tick in one write: a pipelined batch
 * costs one system call, not one per line, and a lone line still leaves before the event loop waits.
 */
export function tickBatchedWriter(output: Writable): (line: string) => void {
  let corked = false;
  const flush = () => {
    corked = false;
    output.uncork();
  };
  return (line) => {
    if (!corked) {
      corked = true;
      output.cork();
      process.nextTick(flush);
    }
    output.write(line);
  };
}
