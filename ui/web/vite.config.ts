/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The node serves the UI on the same origin as the API, so the app only ever calls relative
// paths. In development the same paths are proxied to a local node.
const node = process.env.LOOM_NODE ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  // Absolute: the node serves index.html for every page path (`/workflows/x`), and the assets
  // must resolve from there.
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    // The editor chunk (CodeMirror and the YAML parser, ~530 kB) loads only on /editor.
    chunkSizeWarningLimit: 600,
  },
  server: {
    // The node refuses writes from other origins: the proxy presents them as the node's own.
    proxy: {
      '/api': { target: node, changeOrigin: true, headers: { origin: node } },
      '/readyz': { target: node, changeOrigin: true },
      '/healthz': { target: node, changeOrigin: true },
    },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
  },
});
