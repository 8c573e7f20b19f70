// The example server's REST API (examples/server/API.md), as far as the
// dashboard uses it.
import type { Lead, LeadUpdateMessage, Metrics } from '../contract.ts';

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

/** A page of GET /api/leads/{id}/history: the lead's events from the log, oldest first. */
export interface HistoryPage {
  leadId: number;
  /** Each with its log position as sequence. */
  events: LeadUpdateMessage[];
  /** The after of the next page; 0 when this is the last. */
  next: number;
}

/** How many events a lead's timeline loads at most (five pages). */
export const MAX_HISTORY = 5000;

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

  historyPage(id: number, after = 0, limit = 1000): Promise<HistoryPage> {
    return this.request<HistoryPage>('GET', `/leads/${id}/history?after=${after}&limit=${limit}`);
  }

  /** history reads a lead's events, page after page, up to max. */
  async history(id: number, max = MAX_HISTORY): Promise<LeadUpdateMessage[]> {
    const events: LeadUpdateMessage[] = [];
    let after = 0;
    do {
      const page = await this.historyPage(id, after, Math.min(1000, max - events.length));
      events.push(...page.events);
      after = page.next;
    } while (after > 0 && events.length < max);
    return events;
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
