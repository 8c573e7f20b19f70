import { describe, expect, it } from 'vitest';
import { takeToken, type TokenStore } from './token.ts';

function memory(): TokenStore & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

describe('takeToken', () => {
  it('takes the fragment token, stores it and clears the address bar', () => {
    const store = memory();
    const replaced: string[] = [];
    const t = takeToken(
      { hash: '#token=abc.def.ghi', pathname: '/', search: '?x=1' },
      { replaceState: (_d, _u, url) => void replaced.push(String(url)) },
      store,
    );
    expect(t).toBe('abc.def.ghi');
    expect(replaced).toEqual(['/?x=1']);
    expect(takeToken({ hash: '', pathname: '/', search: '' }, { replaceState: () => {} }, store)).toBe('abc.def.ghi');
  });

  it('returns null without a fragment or a stored token', () => {
    expect(takeToken({ hash: '#other=1', pathname: '/', search: '' }, { replaceState: () => {} }, memory())).toBeNull();
  });
});
