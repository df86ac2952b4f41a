// Node modules that only serving, cluster mode and history files use, loaded when first needed:
// imported up front they cost every process (and every worker thread that loads the package)
// about 1.3 MB of memory, whether it serves anything or not.
import { createRequire } from 'node:module';
import { distUrl } from './module-url.js';

const load = createRequire(distUrl);

export const nodeHttp = (): typeof import('node:http') => load('node:http');
export const nodeCluster = (): typeof import('node:cluster').default => load('node:cluster');
export const nodeCrypto = (): typeof import('node:crypto') => load('node:crypto');
