// The URL of a module in dist/: files beside dist/ (the wasm core, the dashboard page) and
// dependencies loaded on demand are found from it. The CommonJS build has its own (src/cjs/).
export const distUrl: string = import.meta.url;
