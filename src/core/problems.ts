// Where a problem outside the record path goes (a pool that stops answering, a file that cannot be
// written): the owner that registered a sink (the monitor: an 'error' event if anyone listens,
// else a process warning), or a process warning. Kept here, at the bottom, so that integrations
// can report on a monitor without a member for it on the monitor's public face.
const sinks = new WeakMap<object, (err: Error) => void>();

/** Makes `sink` receive the problems reported on `owner`. */
export function setProblemSink(owner: object, sink: (err: Error) => void): void {
  sinks.set(owner, sink);
}

/** Reports a problem on `owner`: to its sink, or as a process warning when it has none. */
export function reportProblem(owner: object, err: Error): void {
  const sink = sinks.get(owner);
  if (sink) sink(err);
  else process.emitWarning(err.message, { code: 'STREAMGAUGE' });
}
