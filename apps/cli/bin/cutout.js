#!/usr/bin/env node
// Node 24 runs the TypeScript entry point itself (type stripping), so `npx cutout` works
// from the repository without a build step or a loader.
await import('../src/main.ts');
