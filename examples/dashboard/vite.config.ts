import { defineConfig } from 'vitest/config';

// The dashboard is served by examples/server at "/", next to /api and
// /leadupdates; `npm run dev` proxies those to a server on :8080.
export default defineConfig({
  oxc: { jsx: { runtime: 'automatic' } },
  // dist/.gitkeep (committed, so that go:embed finds the directory) comes
  // from public/.
  build: { outDir: 'dist', emptyOutDir: true, assetsDir: 'assets' },
  server: {
    proxy: {
      '/api': 'http://localhost:8080',
      '/leadupdates': { target: 'http://localhost:8080', ws: true },
    },
    // The wire contract lives in notify/ts, outside this package.
    fs: { allow: ['../..'] },
  },
  test: { include: ['src/**/*.test.ts', 'src/**/*.test.tsx'], environment: 'node' },
});
