/** Public surface of the bundle stage: write, load and verify bundles. (The demo bundle is trained by src/training/demo.ts.) */
export {
  addBundleFiles,
  bundleUnchanged,
  CHECKSUMS_FILE,
  DAMAGED_BUNDLE_CODES,
  HISTORY_FILE,
  loadBundle,
  MANIFEST_FILE,
  pipelineFromManifest,
  recomputeEvaluation,
  sha256,
  takeHistoryEngine,
  verifyBundleFiles,
  writeBundle,
  type LoadOptions,
} from './io.js';
export { BUNDLE_FORMAT_VERSION, MODEL_NAME_RE, type BundleManifest, type FoldReport, type ForecastPipeline, type LoadedBundle, type RegressionMetrics } from './types.js';
