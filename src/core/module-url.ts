// The URL of this module in dist/core/: files beside dist/ (the wasm core, the dashboard page) are
// found two levels up from it, and dependencies loaded on demand are resolved from it. The CommonJS
// build has its own (src/cjs/core/).
export const distUrl: string = import.meta.url;
