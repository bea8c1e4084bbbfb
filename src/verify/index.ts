/** Proving a deployment: `verify` against a running service, and the causality audit of a feature set. */
export { auditCausality, type AuditOptions, type CausalityAudit, type FeatureLeak } from './audit.js';
export { ServiceClient, ServiceRequestError, type ServiceClientOptions, type ServiceResponse } from './client.js';
export { MismatchDiagnoser, type Diagnosis, type MismatchCause, type SplitEvidence } from './diagnose.js';
export { forecastPath, verifyDeployment, type CardDifference, type DateDifference, type ForecastComparison, type VerifyOptions, type VerifyReport } from './verify.js';
