/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// For `npm run dev` against a running node: COMMUNITAS_API=http://127.0.0.1:PORT
// proxies the API, its WebSocket and the login link, so they stay same-origin.
const api = process.env.COMMUNITAS_API;

// The node serves `dist/` at `/`, same-origin with the API under `/v1`.
export default defineConfig({
  base: '/',
  plugins: [react()],
  server: {
    // The address word list is imported from the Rust crate (`?raw`), one level up.
    fs: { allow: ['..'] },
    proxy: api
      ? {
          // The node compares Origin with Host; present the node's own origin.
          '/v1': { target: api, changeOrigin: true, ws: true, headers: { origin: api } },
          '/login': { target: api, changeOrigin: true, headers: { origin: api } },
        }
      : undefined,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./test/setup.ts'],
    include: ['test/**/*.test.{ts,tsx}'],
    restoreMocks: true,
  },
});
