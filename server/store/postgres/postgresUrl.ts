/** Whether `target` names a PostgreSQL database (`postgres://` or `postgresql://`). */
export const isPostgresUrl = (target: string): boolean => /^postgres(ql)?:\/\//i.test(target);

/** A PostgreSQL URL as it may be printed: the password left out. */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/** Whether a PostgreSQL URL names a host and a database (what a store needs). */
export function isDatabaseUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.hostname !== '' && /^\/[^/]+$/.test(u.pathname);
  } catch {
    return false;
  }
}
