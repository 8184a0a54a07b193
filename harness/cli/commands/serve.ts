import { backendFactory, backendNames } from '../../../adapters/registry.ts';
import { serveOnStdio } from '../../../adapters/serve.ts';
import { ExitCode } from '../../errors.ts';
import { parse, parseArches, usageError, type Command } from '../args.ts';

export const serveCommand: Command = {
  name: 'serve',
  usage: `serve --backend NAME [--arch A] [--revision NAME]
                         expose a backend (${backendNames().join(', ')}) over the stdio protocol; stdout carries only protocol lines`,
  async run(args) {
    const { values } = parse(args, {
      backend: { type: 'string' },
      arch: { type: 'string' },
      revision: { type: 'string' },
    });
    if (!values.backend) throw usageError('serve needs --backend NAME');
    const arch = parseArches(values.arch ? [values.arch] : undefined)?.[0];
    await serveOnStdio(backendFactory(values.backend), {
      ...(arch ? { arch } : {}),
      ...(values.revision ? { revision: values.revision } : {}),
    });
    return ExitCode.Ok;
  },
};
