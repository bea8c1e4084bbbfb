/**
 * Why a deployed forecast differs from the bundle's: recomputes what the bundle knows about that
 * date and tests the explanations that can be told apart from outside the service.
 *
 * - The service answered from **provisional** features (the date's look-ahead bars were not in its
 *   history yet): the bundle's pipeline on the truncated history gives exactly the deployed value.
 * - A tree's forecast is one of its leaf values. A deployed value no leaf holds comes from another
 *   **model**; a leaf value reached by another branch means the service's model **inputs** differ,
 *   and the splits where the two branches part name the features involved.
 */
import type { LoadedBundle } from '../bundle/types.js';
import { barAt, sliceSeries } from '../data/bars.js';
import type { FeatureTable } from '../features/types.js';
import { DecisionTreeRegressor } from '../models/tree/index.js';

export type MismatchCause = 'no_forecast' | 'lookahead' | 'model' | 'features' | 'unknown';

/** A split of the bundle's tree where the deployed forecast lies on the branch the bundle's row did not take. */
export interface SplitEvidence {
  node: number;
  /** The model input the split tests: a raw feature, or a product of two after polynomial expansion. */
  input: string;
  /** The raw features that input is made of. */
  features: string[];
  threshold: number;
  /** The bundle's value of that input on this date, as the tree compares it (float32). */
  value: number;
  /** The branch the bundle's row takes; the deployed value is only reachable on the other one. */
  bundleBranch: 'left' | 'right';
}

export interface Diagnosis {
  cause: MismatchCause;
  explanation: string;
  /** Raw features that explain the difference, where the cause lies in the features. */
  features: string[];
  splits?: SplitEvidence[];
}

/** At most this many splits are reported per date (the first divergences from the root). */
const MAX_SPLITS = 3;

export class MismatchDiagnoser {
  private table: FeatureTable | null = null;
  private readonly index = new Map<string, number>();
  /** The pipeline's own tree: the one object that predicts, so its traversal and leaves are the forecast's. */
  private readonly tree: DecisionTreeRegressor | null;
  private inputNames: { name: string; features: string[] }[] | null = null;

  constructor(private readonly bundle: LoadedBundle) {
    bundle.history.date.forEach((d, i) => this.index.set(d, i));
    const model = bundle.pipeline.model;
    this.tree = model instanceof DecisionTreeRegressor ? model : null;
  }

  diagnose(date: string, deployed: number | null, reason?: string): Diagnosis {
    const i = this.index.get(date);
    if (i === undefined) return { cause: 'unknown', explanation: `${date} is not in the bundle's history`, features: [] };
    if (deployed === null) {
      const lacking = reason?.startsWith('insufficient history')
        ? ': the service\'s history lacks earlier bars the bundle has (features need them to warm up)'
        : '';
      return { cause: 'no_forecast', explanation: `the service gave no forecast: ${reason ?? 'y_pred is null'}${lacking}`, features: [] };
    }
    return this.lookahead(date, i, deployed) ?? this.treeEvidence(date, i, deployed) ?? {
      cause: 'unknown',
      explanation:
        `the bundle's ${this.bundle.manifest.model.kind} cannot tell a different model from different inputs by its output alone; ` +
        `compare the service's model card (GET /models/{name}) and its history with the bundle's`,
      features: [],
    };
  }

  private featureTable(): FeatureTable {
    this.table ??= this.bundle.pipeline.featureSet.computeBatch(this.bundle.history);
    return this.table;
  }

  private finalRow(i: number): Float64Array {
    const t = this.featureTable();
    const k = t.values.cols;
    return t.values.data.slice(i * k, (i + 1) * k);
  }

  /**
   * The service answered before the date's look-ahead bars were stored: replays the bundle's history up
   * to the date (then one more bar at a time, up to the look-ahead) and compares the forecasts.
   */
  private lookahead(date: string, i: number, deployed: number): Diagnosis | null {
    const { featureSet } = this.bundle.pipeline;
    const lookahead = featureSet.lookahead;
    const n = this.bundle.history.date.length;
    if (lookahead === 0 || i + lookahead >= n) return null;
    const engine = featureSet.createEngine(sliceSeries(this.bundle.history, 0, i + 1));
    const row = new Float64Array(featureSet.featureNames.length);
    const final = this.finalRow(i);
    for (let later = 0; later < lookahead; later++) {
      if (later > 0) engine.append(barAt(this.bundle.history, i + later));
      engine.featuresAt(i, row);
      if (!row.every(Number.isFinite)) continue;
      if (!Object.is(this.bundle.pipeline.predictFeatures(row), deployed)) continue;
      const changed = featureSet.featureNames.filter((_, j) => !Object.is(row[j], final[j]));
      const missing = this.bundle.history.date[i + later + 1];
      return {
        cause: 'lookahead',
        explanation:
          `the service forecast ${date} without the bar of ${missing} in its history: the bundle's pipeline on those provisional features gives exactly ${deployed}. ` +
          `${changed.join(', ')} read${changed.length === 1 ? 's' : ''} later bars (the ${featureSet.name} set's look-ahead, FEATURES.md §6): ` +
          `${changed.map((name) => `${name} ${row[featureSet.featureNames.indexOf(name)]} provisional, ${final[featureSet.featureNames.indexOf(name)]} final`).join('; ')}`,
        features: changed,
      };
    }
    return null;
  }

  private treeEvidence(date: string, i: number, deployed: number): Diagnosis | null {
    const tree = this.tree;
    if (!tree) return null;
    const leafValues = tree.leafValues();
    if (!leafValues.has(deployed)) {
      return {
        cause: 'model',
        explanation:
          `${deployed} is not a forecast the bundle's tree can give (none of its ${leafValues.size} leaves holds it): ` +
          `the service's model differs from the bundle's; different features alone cannot explain it`,
        features: [],
      };
    }
    // The model input exactly as the pipeline builds it (scaler, round trip, expansion): one code path.
    const row = this.finalRow(i);
    const pipeline = this.bundle.pipeline;
    const x = pipeline.transform({ rows: 1, cols: row.length, data: row }).data;
    const names = this.modelInputNames();
    const splits: SplitEvidence[] = [];
    for (const step of tree.decisionPath(x)) {
      if (splits.length >= MAX_SPLITS) break;
      if (!tree.subtreeHolds(step.other, deployed)) continue;
      const input = names[step.feature];
      splits.push({ node: step.node, input: input.name, features: input.features, threshold: step.threshold, value: step.value, bundleBranch: step.goesLeft ? 'left' : 'right' });
    }
    const features = [...new Set(splits.flatMap((s) => s.features))];
    const lookahead = pipeline.featureSet.lookahead;
    const bars = lookahead > 0 ? `the bars up to ${date} and the ${lookahead === 1 ? 'next one' : `next ${lookahead}`}` : `the bars up to ${date}`;
    const where = splits
      .map((s) => `node ${s.node} tests ${s.input} <= ${s.threshold}, the bundle's value is ${s.value} (${s.bundleBranch})`)
      .join('; ');
    return {
      cause: 'features',
      explanation:
        `the bundle's tree gives ${deployed} only on a branch this date's inputs do not take (${where}): ` +
        `the service's inputs differ in ${features.length > 0 ? features.join(', ') : 'the features'}, computed from ${bars} (its stored bars there, ` +
        `kept when within 1e-12 of a re-sent bar, or its scaler differ from the bundle's)`,
      features,
      splits,
    };
  }

  /** Each model input's name and the raw features it is made of, as the pipeline's expansion defines them. */
  private modelInputNames(): { name: string; features: string[] }[] {
    if (this.inputNames) return this.inputNames;
    const raw = this.bundle.pipeline.featureSet.featureNames;
    const expansion = this.bundle.pipeline.expansion;
    if (!expansion) this.inputNames = raw.map((name) => ({ name, features: [name] }));
    else {
      const terms = expansion.outputTerms();
      this.inputNames = expansion.featureNames(raw).map((name, o) => ({ name, features: [...new Set(terms[o].map((i) => raw[i]))] }));
    }
    return this.inputNames;
  }
}
