// Preloaded into the soak's server processes (NODE_OPTIONS with --expose-gc, primary and workers
// alike): SIGUSR2 runs a full garbage collection, so the soak compares RSS at the same point of the
// GC cycle instead of wherever two samples of a sawtooth happen to fall. The live JS heap it then
// reports tells a leak in JS objects from memory the allocator merely keeps.
if (typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    globalThis.gc();
    const m = process.memoryUsage();
    process.stderr.write(`[gc-on-signal] pid=${process.pid} heapUsed=${m.heapUsed} heapTotal=${m.heapTotal} external=${m.external} arrayBuffers=${m.arrayBuffers}\n`);
  });
}
