/** Public surface of the bundle stage: write, load and verify bundles; the demo bundle. */
export { addBundleFiles, CHECKSUMS_FILE, HISTORY_FILE, loadBundle, MANIFEST_FILE, pipelineFromManifest, recomputeEvaluation, sha256, writeBundle, type LoadOptions } from './io.js';
export { DEMO_DATA, ensureDemoBundle } from './demo.js';
export { BUNDLE_FORMAT_VERSION, type BundleManifest, type FoldReport, type LoadedBundle, type RegressionMetrics } from './types.js';
