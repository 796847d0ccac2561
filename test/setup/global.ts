/** Vitest global setup: installs what the integration tests need (filled in by the observability work). */
export default function setup(): void {}
