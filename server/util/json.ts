/** `JSON.parse(text)`, or undefined when the text is not JSON (stored rows are checked by a schema next). */
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
