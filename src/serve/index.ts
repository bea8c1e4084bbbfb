/** The serving stage: the HTTP app, the listening server, and the helpers clients and tests use. */
export { buildApp, loggerOptions, type AppOptions, type ClusterHooks } from './app.js';
export { REQUEST_ID_RE } from './errors.js';
export { startServer, type RunningServer, type ServerOptions } from './server.js';
export { BAR_COLUMNS, barsFromColumns, barsFromRecords, barsFromSplit, parseBarDate, seriesToSplitJson, type SplitFrame } from './bar-table.js';
export { forecastBars, type BarForecast, type ForecastOutcome } from './forecast.js';
export { ModelRegistry, compareVersions, type ModelSource, type ReloadReport, type ServedModel } from './registry.js';
export { FeatureState, HistoryMirror } from './history.js';
export { ApiKeyAuth } from './auth.js';
