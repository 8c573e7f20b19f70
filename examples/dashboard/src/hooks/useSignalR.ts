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

/** Where a useLeadGroup membership stands. */
export type GroupStatus = 'none' | 'waiting' | 'joined' | 'denied';

/**
 * useLeadGroup joins Lead_{id} while the calling component is mounted with
 * that id (null: none), and reports whether the hub has it in the group:
 * 'waiting' until connected (the service joins on connect), 'denied' with
 * the hub's error.
 */
export function useLeadGroup(id: number | null): { status: GroupStatus; error: string | null } {
  const service = useService();
  const [status, setStatus] = useState<GroupStatus>('none');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (id === null || id < 0) {
      setStatus('none');
      return;
    }
    let live = true;
    setError(null);
    setStatus('waiting');
    service.joinLeadGroup(id).then(
      (joined) => {
        if (live) setStatus(joined ? 'joined' : 'waiting');
      },
      (err: unknown) => {
        if (!live) return;
        setStatus('denied');
        setError(err instanceof Error ? err.message : String(err));
      },
    );
    // After a reconnect the service re-joins by itself.
    const off = service.onStateChange((s) => {
      if (!live) return;
      if (s.status === 'connected') setStatus((st) => (st === 'denied' ? st : 'joined'));
      else if (s.status !== 'connecting') setStatus((st) => (st === 'denied' ? st : 'waiting'));
    });
    return () => {
      live = false;
      off();
      void service.leaveLeadGroup(id);
    };
  }, [service, id]);
  return { status, error };
}
