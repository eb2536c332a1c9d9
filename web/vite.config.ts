import { defineConfig } from 'vite';

// The API serves the built page at `/`; `npm run dev` proxies the API and Socket.IO
// to a backend running on :8000 (override with BOURSE_BACKEND=http://host:port).
const backend = process.env.BOURSE_BACKEND ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: '/',
  build: {
    outDir: '../api/static',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
  },
  server: {
    port: 5173,
    proxy: {
      '/api': { target: backend, changeOrigin: true },
      '/socket.io': { target: backend, ws: true, changeOrigin: true },
    },
  },
});
