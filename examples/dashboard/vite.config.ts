import { defineConfig } from 'vitest/config';

// The dashboard is served by examples/server at "/", next to /api and
// /leadupdates; `npm run dev` proxies those to a server on :8080.
export default defineConfig({
  oxc: { jsx: { runtime: 'automatic' } },
  // dist/ is committed and embedded by embed.go, so that Go alone serves
  // the app; `make test` rebuilds it elsewhere and fails when the two
  // differ. Vite's output depends only on the sources and the lockfile
  // (content-hashed names, no paths, no time stamps); no source maps, to
  // keep the module small.
  build: { outDir: 'dist', emptyOutDir: true, assetsDir: 'assets', sourcemap: false },
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
