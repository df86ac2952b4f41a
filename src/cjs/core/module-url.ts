// module-url for the CommonJS build (dist/cjs/core/): the URL of the ESM build's module-url, so that
// paths relative to it are the same in both builds.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const distUrl: string = pathToFileURL(join(__dirname, '..', '..', 'core', 'module-url.js')).href;
