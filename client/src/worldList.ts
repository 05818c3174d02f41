import type { WorldList } from '../../shared/protocol/events.ts';

/** One row of the page's world list: a link that joins the world (on its node, clustered). */
export interface WorldLink {
  readonly worldId: string;
  readonly href: string;
  readonly label: string;
  readonly title: string;
}

/**
 * The world list as links: each joins its world under the player's name, on the node that serves
 * it when the server says (clustered), else on this page's server.
 */
export function worldLinks(list: WorldList, page: URL, name: string): WorldLink[] {
  return list.worlds.map((w) => {
    const url = new URL(page.pathname, w.node ?? page.origin);
    url.searchParams.set('world', w.worldId);
    url.searchParams.set('name', name);
    return {
      worldId: w.worldId,
      href: url.toString(),
      label: `${w.worldId} · ${w.players} ${w.players === 1 ? 'player' : 'players'}`,
      title: w.prompt,
    };
  });
}
