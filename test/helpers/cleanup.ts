import { afterEach } from 'vitest';

/**
 * A stack of things a test started (servers, clients, processes) with how to stop each: push the stop as
 * soon as the thing is up; an afterEach registered here stops them all, last started first, whether the
 * test passed or not.
 */
export function useCleanup(): (() => Promise<unknown>)[] {
  const stack: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const f of stack.splice(0).reverse()) await f();
  });
  return stack;
}
