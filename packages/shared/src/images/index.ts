export * from './image-check.ts';
export * from './image-end.ts';
export * from './image-error.ts';
export * from './image-store.ts';
export * from './image-url.ts';
