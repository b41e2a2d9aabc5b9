import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The production build (dist/) is served by the Flask backend at "/", next to its /api routes.
// In development, Vite serves the app and forwards /api to the backend on port 5000.
const backend = process.env.LOOKALIKE_API ?? 'http://127.0.0.1:5000';

export default defineConfig({
  plugins: [react()],
  base: '/',
  server: {
    proxy: {
      '/api': { target: backend, changeOrigin: false },
    },
  },
  preview: {
    proxy: {
      '/api': { target: backend, changeOrigin: false },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
  },
});
