// The product's workflows plus the monitors, for test workers (until src/workflows/index.ts exports them).
export * from '../../src/workflows/index.js';
export * from '../../src/workflows/monitors.js';
