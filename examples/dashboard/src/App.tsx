import { useCallback, useState } from 'react';
import { Dashboard } from './components/Dashboard.tsx';
import { ErrorBoundary } from './components/ErrorBoundary.tsx';
import { TokenForm } from './components/TokenForm.tsx';
import { LeadProvider } from './contexts/LeadContext.tsx';
import { clearToken, saveToken, takeToken } from './token.ts';

export function App() {
  const [token, setToken] = useState<string | null>(() => takeToken());
  const [problem, setProblem] = useState<string | null>(null);
  // One stable getter per token, so that the provider's service lives as
  // long as the token does.
  const getToken = useCallback(() => token ?? '', [token]);

  if (token === null) {
    return (
      <TokenForm
        problem={problem}
        onToken={(t) => {
          saveToken(t);
          setProblem(null);
          setToken(t);
        }}
      />
    );
  }
  const signOut = (why: string | null) => {
    clearToken();
    setProblem(why);
    setToken(null);
  };
  return (
    <LeadProvider
      token={getToken}
      onUnauthorized={(why) => {
        console.warn('dashboard: token rejected:', why);
        signOut('The server rejected the token (401): it may have expired, or the server restarted with another secret.');
      }}
    >
      <ErrorBoundary>
        <Dashboard onSignOut={() => signOut(null)} />
      </ErrorBoundary>
    </LeadProvider>
  );
}
