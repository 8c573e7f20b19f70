// useSignalR binds a SignalRService to a component: connection state, the
// last messages, subscriptions dropped on unmount, and lead groups held for
// as long as the component that asked for them is mounted.
import { createContext, useContext, useEffect, useState } from 'react';
import type { LeadUpdateMessage, MetricsUpdateMessage } from '../contract.ts';
import type { ConnectionSnapshot, SignalRService } from '../services/signalRService.ts';

/** SignalRContext provides the app's one SignalRService. */
export const SignalRContext = createContext<SignalRService | null>(null);

export interface SignalRHook {
  connection: ConnectionSnapshot;
  lastLeadUpdate: LeadUpdateMessage | null;
  lastMetricsUpdate: MetricsUpdateMessage | null;
  retry: () => void;
  service: SignalRService;
}

function useService(): SignalRService {
  const s = useContext(SignalRContext);
  if (s === null) throw new Error('useSignalR outside a SignalRContext provider');
  return s;
}

export function useSignalR(): SignalRHook {
  const service = useService();
  const [connection, setConnection] = useState<ConnectionSnapshot>(service.state);
  const [lastLeadUpdate, setLastLead] = useState<LeadUpdateMessage | null>(null);
  const [lastMetricsUpdate, setLastMetrics] = useState<MetricsUpdateMessage | null>(null);

  useEffect(() => {
    setConnection(service.state);
    const offs = [
      service.onStateChange(setConnection),
      service.onLeadUpdate(setLastLead),
      service.onMetricsUpdate(setLastMetrics),
    ];
    return () => offs.forEach((off) => off());
  }, [service]);

  return { connection, lastLeadUpdate, lastMetricsUpdate, retry: () => void service.retry(), service };
}

/**
 * useLeadGroup joins Lead_{id} while the calling component is mounted with
 * that id (null: none), and reports a denied join.
 */
export function useLeadGroup(id: number | null): { error: string | null } {
  const service = useService();
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (id === null || id < 0) return;
    let live = true;
    setError(null);
    service.joinLeadGroup(id).catch((err: unknown) => {
      if (live) setError(err instanceof Error ? err.message : String(err));
    });
    return () => {
      live = false;
      void service.leaveLeadGroup(id);
    };
  }, [service, id]);
  return { error };
}
