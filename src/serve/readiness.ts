/**
 * The one readiness decision behind `/readyz`, `/v2/health/ready`, `/ping` and OIP model readiness:
 * not shutting down, at least one model loaded, and the history store answering within
 * READY_TIMEOUT_MS. Concurrent probes share one store check, so a flood of probes against a hung
 * database costs one pending ping, not one per probe.
 */
import type { HistoryStore } from '../store/types.js';
import type { ModelRegistry, RefusedBundle } from './registry.js';

export type ReadinessStatus = 'ready' | 'shutting_down' | 'no_models' | 'store_unavailable';

export interface Readiness {
  ready: boolean;
  status: ReadinessStatus;
  models: number;
  /** Bundle versions the last load refused (served models are unaffected). */
  refused: readonly RefusedBundle[];
  message?: string;
}

export class ReadinessProbe {
  private inflight: Promise<Readiness> | null = null;

  constructor(
    private readonly store: HistoryStore,
    private readonly registry: ModelRegistry,
    private readonly state: { shuttingDown: boolean },
    private readonly timeoutMs: number,
  ) {}

  check(): Promise<Readiness> {
    const base = { models: this.registry.all().length, refused: this.registry.refused() };
    if (this.state.shuttingDown) return Promise.resolve({ ready: false, status: 'shutting_down', ...base });
    if (base.models === 0)
      return Promise.resolve({ ready: false, status: 'no_models', ...base, message: 'no model is loaded: add a bundle and POST /admin/reload' });
    this.inflight ??= this.pingStore().finally(() => (this.inflight = null));
    return this.inflight.then((r) => ({ ...r, ...base, models: this.registry.all().length }));
  }

  private async pingStore(): Promise<Readiness> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the ${this.store.kind} history store did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      await Promise.race([this.store.ping(this.timeoutMs), timeout]);
      return { ready: true, status: 'ready', models: 0, refused: [] };
    } catch (err) {
      return { ready: false, status: 'store_unavailable', models: 0, refused: [], message: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }
}
