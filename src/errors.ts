/**
 * Typed errors shared by every stage. Each carries the HTTP status the service answers with,
 * so the CLI and the HTTP layer report the same problem the same way (DEVELOPERS.md: bad input
 * always gets a clear error naming the field and the problem, never a 500).
 */
export class ForecastError extends Error {
  constructor(
    message: string,
    /** HTTP status the service answers with: 400, 401, 404, 409, 413, 415, 422. */
    readonly status: number = 400,
    /** Machine-readable code, e.g. `invalid_value`, `conflict`, `bundle_tampered`. */
    readonly code: string = 'bad_request',
    /** Extra structured detail (row, field, stored and submitted values...). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A data problem at a known place: a CSV line and column, or a JSON row and field. */
export class DataError extends ForecastError {
  constructor(
    message: string,
    readonly location: { line?: number; row?: number; column?: string; field?: string } = {},
    status = 422,
    code = 'invalid_data',
  ) {
    super(message, status, code, location);
  }
}

/** A bundle that cannot be trusted: tampered, truncated, unknown or newer format. */
export class BundleError extends ForecastError {
  constructor(message: string, code = 'bundle_invalid') {
    super(message, 422, code);
  }
}

/**
 * The history store cannot be reached or did not answer in time (refused, partitioned, restarting,
 * timed out): a 503 the client may retry, not a 500. The message is built by the store from a fixed
 * description of the failure, never from a driver message or a connection string, so it cannot
 * carry credentials; the driver's error is kept as the non-enumerable `cause` for logs.
 */
export class StoreUnavailableError extends ForecastError {
  constructor(message = 'the history store is unavailable; retry later', options: { reason?: string; cause?: unknown } = {}) {
    super(message, 503, 'store_unavailable', options.reason ? { reason: options.reason } : undefined);
    if (options.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false, writable: true, configurable: true });
  }
}
