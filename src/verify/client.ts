/**
 * A small HTTP client for a deployed forecast service: JSON in and out, the API key in `x-api-key`,
 * a time-out per request, and retries with exponential backoff where retrying is safe and useful.
 *
 * Every request `verify` sends is idempotent (re-posting stored bars is a no-op that answers the same
 * forecasts; GETs read), so a request that timed out or failed on the way can simply be sent again.
 */
import { ForecastError } from '../errors.js';

export interface ServiceClientOptions {
  /** Base URL of the service; may carry a path prefix (an API Gateway stage: `https://.../prod`). */
  url: string;
  apiKey?: string | null;
  /** Time-out of one attempt, in ms (default 30 s). */
  timeoutMs?: number;
  /** Further attempts after the first on 429, 5xx, time-outs and network errors (default 5). */
  retries?: number;
  /** First backoff in ms, doubled per attempt up to 10 s, with jitter (default 250). */
  backoffMs?: number;
  /** fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Told of every retry (progress output). */
  onRetry?: (info: { method: string; path: string; attempt: number; delayMs: number; cause: string }) => void;
}

/** A request the service refused or that could not be completed; `status` 0 when no answer came. */
export class ServiceRequestError extends ForecastError {
  constructor(
    message: string,
    readonly httpStatus: number,
    /** The service's error code (`unauthorized`, `conflict`, ...) or `network_error`, `timeout`. */
    readonly serviceCode: string,
    readonly serviceDetails?: Record<string, unknown>,
    /** The service's own message, without the request line around it. */
    readonly serviceMessage?: string,
  ) {
    super(message, httpStatus >= 400 && httpStatus < 500 ? httpStatus : 502, serviceCode, serviceDetails);
  }
}

export interface ServiceResponse<T> {
  status: number;
  body: T;
}

const MAX_BACKOFF_MS = 10_000;
/** A Retry-After longer than this is not worth waiting for inside a verification run. */
const MAX_RETRY_AFTER_MS = 60_000;

interface ErrorBody {
  error?: { code?: string; message?: string; details?: Record<string, unknown>; request_id?: string };
}

function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** Retry-After as delta-seconds or an HTTP date; null when absent or unreadable. */
function retryAfterMs(header: string | null): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.min(Math.max(0, at - Date.now()), MAX_RETRY_AFTER_MS);
}

function describeNetworkError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message} (${cause})` : e.message;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class ServiceClient {
  readonly baseUrl: string;
  private readonly apiKey: string | null;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly onRetry: ServiceClientOptions['onRetry'];
  /** Requests answered (successfully or not) and retries made, for the report. */
  readonly stats = { requests: 0, retries: 0 };

  constructor(options: ServiceClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new ForecastError(`--url must be an absolute http(s) URL, got "${options.url}"`, 400, 'invalid_option');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ForecastError(`--url must be http or https, got "${options.url}"`, 400, 'invalid_option');
    if (parsed.search || parsed.hash) throw new ForecastError(`--url is the service's base URL, without a query or fragment: "${options.url}"`, 400, 'invalid_option');
    this.baseUrl = parsed.href.replace(/\/+$/, '');
    this.apiKey = options.apiKey ?? null;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 5;
    this.backoffMs = options.backoffMs ?? 250;
    if (!(this.timeoutMs > 0)) throw new ForecastError(`--timeout must be a positive number of ms, got ${this.timeoutMs}`, 400, 'invalid_option');
    if (!(Number.isInteger(this.retries) && this.retries >= 0)) throw new ForecastError(`--retries must be 0 or more, got ${this.retries}`, 400, 'invalid_option');
    this.fetchImpl = options.fetch ?? fetch;
    this.onRetry = options.onRetry;
  }

  get<T>(path: string): Promise<ServiceResponse<T>> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<ServiceResponse<T>> {
    return this.request<T>('POST', path, JSON.stringify(body));
  }

  /** Sends a request, retrying 429 / 5xx / time-outs / network errors; any other non-2xx throws at once. */
  async request<T>(method: string, path: string, body?: string): Promise<ServiceResponse<T>> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey) headers['x-api-key'] = this.apiKey;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      let text: string;
      try {
        response = await this.fetchImpl(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
        // The body is read under the same time-out: a service that stalls mid-answer is retried too.
        text = await response.text();
      } catch (err) {
        const cause = describeNetworkError(err);
        if (attempt < this.retries) {
          await this.backoff(method, path, attempt, cause, null);
          continue;
        }
        const code = cause === 'timed out' ? 'timeout' : 'network_error';
        const what = cause === 'timed out' ? `no answer within ${this.timeoutMs} ms` : cause;
        throw new ServiceRequestError(`${method} ${url} failed after ${attempt + 1} attempts: ${what}`, 0, code);
      }
      this.stats.requests++;
      if (response.ok) {
        try {
          return { status: response.status, body: JSON.parse(text) as T };
        } catch {
          throw new ServiceRequestError(`${method} ${url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`, 502, 'invalid_response');
        }
      }
      if (isRetryableStatus(response.status) && attempt < this.retries) {
        await this.backoff(method, path, attempt, `${response.status}`, retryAfterMs(response.headers.get('retry-after')));
        continue;
      }
      throw this.refusal(method, url, response.status, text, attempt);
    }
  }

  private async backoff(method: string, path: string, attempt: number, cause: string, retryAfter: number | null): Promise<void> {
    // Full jitter on an exponential ceiling, so many clients retrying a busy service spread out.
    const ceiling = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** attempt);
    const delayMs = retryAfter ?? Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.stats.retries++;
    this.onRetry?.({ method, path, attempt: attempt + 1, delayMs, cause });
    await sleep(delayMs);
  }

  /** The error for a final non-2xx answer, saying what to do about it where that is clear. */
  private refusal(method: string, url: string, status: number, text: string, attempt: number): ServiceRequestError {
    let parsed: ErrorBody = {};
    try {
      parsed = JSON.parse(text) as ErrorBody;
    } catch {
      /* not the service's error shape: a proxy or gateway answered */
    }
    const code = parsed.error?.code ?? `http_${status}`;
    const message = parsed.error?.message ?? (text.trim().slice(0, 300) || '(empty body)');
    const requestId = parsed.error?.request_id ? ` [request ${parsed.error.request_id}]` : '';
    const after = attempt > 0 ? ` after ${attempt + 1} attempts` : '';
    if (status === 401 || status === 403) {
      const hint = this.apiKey
        ? 'the API key was refused: check --api-key / API_KEY against the service\'s API_KEYS'
        : 'no API key was sent: pass --api-key KEY or set API_KEY';
      return new ServiceRequestError(`${method} ${url} answered ${status} ${code}: ${hint}`, status, code);
    }
    return new ServiceRequestError(`${method} ${url} answered ${status} ${code}${after}: ${message}${requestId}`, status, code, parsed.error?.details, message);
  }
}
