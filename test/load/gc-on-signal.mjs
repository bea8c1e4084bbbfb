// Preloaded into the soak's server processes (NODE_OPTIONS with --expose-gc, primary and workers
// alike): SIGUSR2 runs a full garbage collection, so the soak compares RSS at the same point of the
// GC cycle instead of wherever two samples of a sawtooth happen to fall.
if (typeof globalThis.gc === 'function') process.on('SIGUSR2', () => globalThis.gc());
