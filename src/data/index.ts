/** Bars: the CSV and JSON readers, validation, the synthetic generator. */
export type { Bar, BarSeries } from './bars.js';
export { barAt, barsToSeries, seriesLength, seriesToBars, sliceSeries } from './bars.js';
export { BARS_CSV_HEADER, barsCsvRows, readBarsCsv, readBarsCsvFile, writeBarsCsv, writeYahooCsv, type NumberParsing, type ReadBarsOptions } from './csv.js';
export { parseLegacyFloat } from './legacy-float.js';
export { generateSyntheticBars, type SyntheticBarsOptions } from './synthetic.js';
export { findBarProblem, validateBar, validateBars, type BarField, type BarProblem, type ValidateBarsOptions } from './validate.js';
