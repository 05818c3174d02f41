/** The store's shared SQL (`?` placeholders) with PostgreSQL's numbered ones. */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
