// The JWT: taken from the address's fragment (#token=..., what the example
// server prints), then kept in sessionStorage and removed from the address
// bar so that it is not bookmarked, shared or left in the history.
const KEY = 'leadupdates.token';

export interface TokenStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** takeToken returns the token of the fragment (storing it) or the stored one. */
export function takeToken(
  loc: Pick<Location, 'hash' | 'pathname' | 'search'> = window.location,
  history: Pick<History, 'replaceState'> = window.history,
  store: TokenStore = sessionStorage,
): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(loc.hash);
  if (m?.[1]) {
    const t = decodeURIComponent(m[1]).trim();
    store.setItem(KEY, t);
    history.replaceState(null, '', loc.pathname + loc.search);
    return t;
  }
  return store.getItem(KEY);
}

export function saveToken(t: string, store: TokenStore = sessionStorage): void {
  store.setItem(KEY, t.trim());
}

export function clearToken(store: TokenStore = sessionStorage): void {
  store.removeItem(KEY);
}
