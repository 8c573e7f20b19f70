// LeadContext: leads and metrics fed by the REST API and live updates, in
// fallback mode sample data while the hub is out of reach.
import { createContext, useCallback, useContext, useEffect, useMemo, useReducer, useRef, useState, type ReactNode } from 'react';
import type { Lead, LeadUpdateMessage } from '../contract.ts';
import { SignalRContext } from '../hooks/useSignalR.ts';
import { Api, ApiError } from '../services/api.ts';
import { SignalRService, type ConnectionSnapshot } from '../services/signalRService.ts';
import { mapStatus } from '../status.ts';
import { initialLeadState, leadReducer, type LeadState } from './leadReducer.ts';

export { initialLeadState, leadReducer, isProcessing } from './leadReducer.ts';
export type { LeadAction, LeadState, DataMode, WorkflowState, ActivityItem } from './leadReducer.ts';

export interface LeadContextValue {
  state: LeadState;
  connection: ConnectionSnapshot;
  /** Loads leads and metrics again. */
  reload: () => void;
  /** Leaves fallback mode: reconnects and reloads. */
  retry: () => void;
  fetchLead: (id: number) => Promise<Lead>;
  /** A lead's events from the server's event log, oldest first (rejects with ApiError 503 without a log). */
  fetchHistory: (id: number) => Promise<LeadUpdateMessage[]>;
  processLead: (id: number) => Promise<void>;
  notifications: { supported: boolean; enabled: boolean; toggle: () => void };
}

const LeadContext = createContext<LeadContextValue | null>(null);

export function useLeads(): LeadContextValue {
  const v = useContext(LeadContext);
  if (v === null) throw new Error('useLeads outside a LeadProvider');
  return v;
}

export interface LeadProviderProps {
  /** Returns the current JWT. */
  token: () => string;
  /** Called when the server rejects the token. */
  onUnauthorized: (why: string) => void;
  children: ReactNode;
  /** For tests and embedding; defaults to a service on /leadupdates. */
  service?: SignalRService;
}

export function LeadProvider({ token, onUnauthorized, children, service: given }: LeadProviderProps) {
  const service = useMemo(() => given ?? new SignalRService({ accessTokenFactory: token, catchUp: true }), [given, token]);
  const api = useMemo(() => new Api(token), [token]);
  const [state, dispatch] = useReducer(leadReducer, initialLeadState);
  const stateRef = useRef(state);
  stateRef.current = state;
  const [connection, setConnection] = useState<ConnectionSnapshot>(service.state);
  const notify = useNotifications();
  const notifyRef = useRef(notify.send);
  notifyRef.current = notify.send;
  const unauthorizedRef = useRef(onUnauthorized);
  unauthorizedRef.current = onUnauthorized;

  // load fetches the leads and metrics; with an event log the page says
  // which position it reflects, and the hub replays what came after it
  // (live updates wait meanwhile, then apply once each, in order).
  const load = useCallback(async (): Promise<void> => {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const [page, metrics] = await Promise.all([api.listLeads(), api.metrics()]);
        dispatch({ type: 'loaded', leads: page.items, total: page.total, metrics });
        if (page.position === undefined) {
          service.release();
          return;
        }
        // A reload here means pruning overtook the page just read: read again, once.
        if ((await service.catchUp(page.position)).kind !== 'reload') return;
      } catch (err) {
        service.release();
        if (err instanceof ApiError && err.status === 401) {
          unauthorizedRef.current(err.message);
          return;
        }
        dispatch({ type: 'loadFailed', error: err instanceof Error ? err.message : String(err) });
        return;
      }
    }
  }, [api, service]);

  // resync runs on every (re)connection: live data with a known position
  // catches up from it; anything else — first connection, sample data, a
  // hub without a log, a position older than the log keeps — loads again.
  const resync = useCallback(async () => {
    if (stateRef.current.mode === 'live' && service.position !== null) {
      if ((await service.catchUp()).kind === 'current') return;
    }
    await load();
  }, [service, load]);

  useEffect(() => {
    const offs = [
      service.onLeadUpdate((msg) => {
        dispatch({ type: 'leadUpdate', msg });
        notifyRef.current(msg);
      }),
      service.onMetricsUpdate((msg) => dispatch({ type: 'metricsUpdate', msg })),
      service.onReload(() => void load()),
      service.onStateChange((s) => {
        setConnection(s);
        switch (s.status) {
          case 'connected':
            // A new connection may have missed anything: catch up, or load the truth.
            void resync();
            break;
          case 'reconnecting':
            dispatch({ type: 'connectionLost' });
            break;
          case 'fallback':
            dispatch({ type: 'connectionLost' });
            dispatch({ type: 'fallback' });
            break;
          case 'unauthorized':
            unauthorizedRef.current(s.error ?? 'the server rejected the token');
            break;
        }
      }),
    ];
    void service.start();
    return () => {
      offs.forEach((off) => off());
      void service.stop();
    };
  }, [service, load, resync]);

  const reload = useCallback(() => void load(), [load]);
  const retry = useCallback(() => {
    if (service.state.status === 'connected') void load();
    else void service.retry();
  }, [service, load]);
  const fetchLead = useCallback(
    async (id: number) => {
      const lead = await api.getLead(id);
      dispatch({ type: 'leadFetched', lead });
      return lead;
    },
    [api],
  );
  const fetchHistory = useCallback((id: number) => api.history(id), [api]);
  const processLead = useCallback(
    async (id: number) => {
      await api.process(id);
    },
    [api],
  );
  const value = useMemo<LeadContextValue>(
    () => ({
      state,
      connection,
      reload,
      retry,
      fetchLead,
      fetchHistory,
      processLead,
      notifications: { supported: notify.supported, enabled: notify.enabled, toggle: notify.toggle },
    }),
    [state, connection, reload, retry, fetchLead, fetchHistory, processLead, notify.supported, notify.enabled, notify.toggle],
  );

  return (
    <SignalRContext.Provider value={service}>
      <LeadContext.Provider value={value}>{children}</LeadContext.Provider>
    </SignalRContext.Provider>
  );
}

/** Optional browser notifications for a qualified lead and a failed workflow. */
function useNotifications() {
  const supported = typeof window !== 'undefined' && 'Notification' in window;
  const [enabled, setEnabled] = useState(false);
  const toggle = useCallback(() => {
    if (!supported) return;
    if (enabled) {
      setEnabled(false);
      return;
    }
    void Notification.requestPermission().then((p) => setEnabled(p === 'granted'));
  }, [supported, enabled]);
  const send = useCallback(
    (msg: LeadUpdateMessage) => {
      if (!enabled || !supported || Notification.permission !== 'granted') return;
      let title: string | null = null;
      if (msg.type === 'STATUS_UPDATE' && mapStatus(msg.newStatus).status === 'qualified') title = 'Lead qualified';
      if (msg.type === 'WORKFLOW_FAILED') title = 'Workflow failed';
      if (title === null) return;
      try {
        new Notification(title, { body: `Lead ${msg.leadId ?? ''} ${msg.message ?? ''}`.trim(), tag: `lead-${msg.leadId}` });
      } catch (err) {
        console.warn('notification', err);
      }
    },
    [enabled, supported],
  );
  return { supported, enabled, toggle, send };
}
