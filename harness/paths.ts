import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The package root: spec/, suites/ and expectations/ are found relative to it, never to the working directory. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const defaultSpecRoot = path.join(packageRoot, 'spec');
export const defaultExpectationsDir = path.join(packageRoot, 'expectations');
