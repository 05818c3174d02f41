import { expect } from 'vitest';
import { SpatiaError } from '../../shared/errors.ts';

/** Asserts that `f` throws a SpatiaError with `code` (and, when given, a message matching `message`). */
export function expectCode(f: () => unknown, code: string, message?: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SpatiaError);
    expect((e as SpatiaError).code).toBe(code);
    if (message) expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected an error');
}
