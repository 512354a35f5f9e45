import pg from 'pg';

/** Another database on the same server as `serverUrl` (same host, port, user and password). */
export function databaseUrlFor(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The server's `postgres` database: where databases are created and dropped from. */
export function maintenanceUrl(databaseUrl: string): string {
  return databaseUrlFor(databaseUrl, 'postgres');
}

/** Drops the database named in the URL, closing its sessions first (a test or bench run is over). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  const admin = new pg.Client({ connectionString: maintenanceUrl(databaseUrl) });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
