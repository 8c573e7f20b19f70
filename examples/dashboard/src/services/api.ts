// The example server's REST API (examples/server/API.md), as far as the
// dashboard uses it.
import type { Lead, Metrics } from '../contract.ts';

/** ApiError is a non-2xx answer: status and the server's `error` text. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface LeadPage {
  items: Lead[];
  page: number;
  pageSize: number;
  total: number;
  /**
   * The event-log position the page reflects, when the server has a log:
   * catch up from it (CatchUp) to get every change made since.
   */
  position?: number;
}

export class Api {
  constructor(
    private readonly token: () => string,
    private readonly base = '/api',
  ) {}

  listLeads(pageSize = 50): Promise<LeadPage> {
    return this.request<LeadPage>('GET', `/leads?page=1&pageSize=${pageSize}`);
  }

  getLead(id: number): Promise<Lead> {
    return this.request<Lead>('GET', `/leads/${id}`);
  }

  metrics(): Promise<Metrics> {
    return this.request<Metrics>('GET', '/metrics');
  }

  process(id: number): Promise<unknown> {
    return this.request('POST', `/leads/${id}/process`);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: {
          Authorization: `Bearer ${this.token()}`,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new ApiError(0, `network error: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!res.ok) {
      let text = res.statusText;
      try {
        const j = (await res.json()) as { error?: string };
        if (j.error) text = j.error;
      } catch {
        // not JSON: keep the status text
      }
      throw new ApiError(res.status, `${method} ${path}: ${res.status} ${text}`);
    }
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }
}
