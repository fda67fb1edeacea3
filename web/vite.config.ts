import { defineConfig } from 'vitest/config';

// The app is built into the Python package, which serves it at `/` with an SPA fallback.
const API = 'http://127.0.0.1:8765';

export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../src/openinspect/web/dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      '/api': { target: API, ws: true, changeOrigin: false },
      '/healthz': { target: API },
      // Sign-in routes are the server's, except /auth/complete: a page of this app.
      '^/auth/(?!complete(?:[/?#]|$))': { target: API },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
