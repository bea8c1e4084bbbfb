import type { BarSeries } from '../data/bars.js';
import type { FeatureSetName } from '../features/types.js';
import type { FeaturePipeline } from '../models/pipeline.js';
import type { PolynomialState } from '../models/polynomial.js';
import type { ScalerState } from '../models/scaler.js';
import type { ModelState } from '../models/types.js';

// Declared by the models stage (bundle builds on models, never the reverse); re-exported for the
// stages that know the pipeline as part of a bundle.
export type { ForecastPipeline } from '../models/pipeline.js';

/**
 * The manifest format this program writes, and the newest it reads. Version 2 added the optional
 * `featureDistribution`; a version-1 bundle (without it) loads as before and reports feature drift
 * as unavailable.
 */
export const BUNDLE_FORMAT_VERSION = 2;

/**
 * A model name and a model version: each a URL path segment of the service (`/models/NAME/...`),
 * so letters, digits, dot, dash and underscore, at most 128 characters. The one rule the bundle
 * writer, the loader, the CLI's naming and the service's registry share.
 */
export const MODEL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface RegressionMetrics {
  mae: number;
  mse: number;
  r2: number;
  rows: number;
}

/** A naive forecast scored on the same rows as the model (see src/training/baselines.ts). */
export interface BaselineReport {
  /** The constant the baseline forecasts for every row. */
  prediction: number;
  metrics: RegressionMetrics;
  /** The model's MSE on the same rows is lower than the baseline's. */
  modelBeats: boolean;
}

export interface Baselines {
  /** Tomorrow's close equals today's: a forecast return of 1. */
  persistence: BaselineReport;
  /** The mean target of the training rows. */
  trainingMean: BaselineReport;
}

export interface FoldReport {
  fold: number;
  train: [start: number, end: number];
  validation: [start: number, end: number];
  metrics: RegressionMetrics;
  /** On the fold's validation rows. Absent from bundles made before baselines were recorded. */
  baselines?: Baselines;
}

/**
 * One feature's training distribution in quantile bins (src/monitor/drift.ts builds it). A value v
 * falls in bin k = the number of edges <= v: bin 0 is (-inf, edges[0]), bin k is
 * [edges[k-1], edges[k]), the last bin is [edges[edges.length-1], +inf).
 */
export interface FeatureBins {
  name: string;
  /** Interior cut points: finite, strictly increasing, at most `bins - 1` of them. */
  edges: number[];
  /** The training rows' share in each bin: `edges.length + 1` values summing to 1 (all 0 when `rows` is 0). */
  proportions: number[];
  /** Finite training values binned. */
  rows: number;
  /** Training values left out because they were not finite (NaN, ±Infinity). */
  nonFinite: number;
}

/** Each feature's distribution over the rows the model was fitted on (raw values, before scaling). */
export interface FeatureDistribution {
  /** Bins asked for (10): a feature with ties at a cut point has fewer (its duplicate edges merged). */
  bins: number;
  /** One per feature, in the feature set's order. */
  features: FeatureBins[];
}

/** Everything a forecast needs, and the evidence deployment must reproduce. Stored as manifest.json. */
export interface BundleManifest {
  formatVersion: number;
  name: string;
  version: string;
  createdAt: string;
  /** How the bundle was made: `train` or `import-sklearn`. */
  origin: 'train' | 'import-sklearn';
  source: { file: string; sha256: string; firstDate: string; lastDate: string; bars: number };
  featureSet: {
    name: FeatureSetName;
    featureNames: string[];
    lookahead: number;
    numberParsing: 'legacy' | 'exact';
    caveats: string[];
    /** Reference recipe: scaled values go through the seed's CSV round trip (FEATURES.md §5). */
    csvRoundTrip: boolean;
  };
  scaler: ScalerState;
  expansion: PolynomialState | null;
  model: ModelState;
  hyperparameters: Record<string, unknown>;
  training: {
    learnRows: number;
    /** Model rows (indices into the feature table's model rows) the final model was fitted on. */
    fitRows: [start: number, end: number];
    folds: FoldReport[];
  };
  metrics: {
    test: RegressionMetrics;
    cv: RegressionMetrics | null;
    /** On the test rows, against the learn rows' mean. Absent from bundles made before baselines were recorded. */
    baselines?: Baselines;
  };
  /** The offline evaluation: one forecast per test date, which every deployment must reproduce bit for bit. */
  evaluation: { dates: string[]; yTrue: number[]; yPred: number[] };
  /**
   * The training distribution of every feature, the reference of the service's drift report.
   * Absent from bundles made before format version 2: they load, and report drift as unavailable.
   */
  featureDistribution?: FeatureDistribution;
  /** Bars of the source history are stored beside the manifest (history.csv) so a service can seed its store. */
  historyFile: string;
}

/** A bundle loaded and verified from disk. */
export interface LoadedBundle {
  dir: string;
  manifest: BundleManifest;
  pipeline: FeaturePipeline;
  /** The source history the bundle was evaluated on (history.csv), to seed a service's store. */
  history: BarSeries;
  /** `name@version`. */
  id: string;
  /**
   * The sha256 of every file the bundle was loaded from, by name, as verified then (absent for a
   * bundle made in memory): lets a reload tell an unchanged folder from a changed or damaged one.
   */
  files?: Readonly<Record<string, string>>;
}
