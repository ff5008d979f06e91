/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The node serves `dist/` at `/`, same-origin with the API under `/v1`.
export default defineConfig({
  base: '/',
  plugins: [react()],
  server: {
    // The address word list is imported from the Rust crate (`?raw`), one level up.
    fs: { allow: ['..'] },
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
