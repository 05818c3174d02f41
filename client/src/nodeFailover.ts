import type { ServerError } from '../../shared/protocol/events.ts';

/**
 * Clustered servers (docs/deploy.md): a world is served by one node at a time. The page follows
 * the world to its node (WORLD_ELSEWHERE names it) and, when its node goes away, moves to another
 * live node the server listed in its welcome; it keeps the page's query (world, prompt, name, …).
 */
const NODES_KEY = 'spatia.nodes';

/** Keeps the live nodes a welcome listed (for this tab). */
export function rememberNodes(nodes: readonly string[]): void {
  sessionStorage.setItem(NODES_KEY, JSON.stringify(nodes));
}

/** Opens this page on `node` if it answers; false if it does not (it died: its lease runs out). */
async function moveTo(node: string): Promise<boolean> {
  let target: URL;
  try {
    target = new URL(location.pathname + location.search + location.hash, node);
  } catch {
    return false;
  }
  if (target.origin === location.origin) return false;
  try {
    // Opaque, but it only resolves when something answers there.
    await fetch(new URL('healthz', target), { mode: 'no-cors', cache: 'no-store' });
  } catch {
    return false;
  }
  location.assign(target);
  return true;
}

/** Moves to the first other remembered node that answers; false when none does. */
export async function failOver(): Promise<boolean> {
  let nodes: unknown;
  try {
    nodes = JSON.parse(sessionStorage.getItem(NODES_KEY) ?? '[]');
  } catch {
    return false;
  }
  if (!Array.isArray(nodes)) return false;
  for (const n of nodes) if (typeof n === 'string' && (await moveTo(n))) return true;
  return false;
}

/**
 * Follows a WORLD_ELSEWHERE answer: to the node named when it answers, else calls `retry` once the
 * named node's lease has run out (the next node asked takes the world over).
 */
export async function followElsewhere(error: ServerError, retry: () => void): Promise<void> {
  if (error.node && (await moveTo(error.node))) return;
  setTimeout(retry, Math.min(error.retryAfterMs ?? 1000, 30_000) + 200);
}
