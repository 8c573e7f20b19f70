import { useState } from 'react';

export function TokenForm({ problem, onToken }: { problem: string | null; onToken: (t: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <main className="token-page">
      <form
        className="card token-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim() !== '') onToken(value);
        }}
      >
        <h1>Lead processing — live</h1>
        {problem && (
          <p className="error" role="alert">
            {problem}
          </p>
        )}
        <p>
          Paste an access token. The example server prints a link with one when it starts; for a salesperson run{' '}
          <code>go run ./examples/server token -sub alice -role sales</code>.
        </p>
        <label>
          Token
          <textarea data-testid="token-input" rows={4} value={value} onChange={(e) => setValue(e.target.value)} />
        </label>
        <button type="submit">Connect</button>
      </form>
    </main>
  );
}
