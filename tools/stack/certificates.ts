// A throw-away CA and a broker certificate for the secure local broker, made with the openssl
// command line (no Java keytool, no npm crypto library): the same steps an operator would follow.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface BrokerCertificates {
  /** The CA certificate (PEM): what clients trust (KAFKA_SSL_CA_FILE). */
  caFile: string;
  /** The broker's key and certificate chain, PKCS12, for `ssl.keystore.location`. */
  keystoreFile: string;
  keystorePassword: string;
}

/** Valid long enough for a development machine; the stack makes new ones on every fresh `up`. */
const DAYS = '825';

/**
 * An EC P-256 CA and a broker certificate it signs, for 127.0.0.1 and localhost (both as SANs:
 * Node checks an IP address against IP SANs only). The CA key stays in `dir`, readable by its owner
 * only; nothing else is signed with it.
 */
export async function makeBrokerCertificates(dir: string): Promise<BrokerCertificates> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string): string => join(dir, name);
  const keystorePassword = randomBytes(16).toString('hex');
  // A file rather than the command line, where any local user could read it from /proc.
  writeFileSync(file('keystore.password'), `${keystorePassword}\n`, { mode: 0o600 });
  writeFileSync(
    file('broker.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyAgreement',
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '',
    ].join('\n'),
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', DAYS,
    '-subj', '/CN=Arbiter local stack CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await openssl(['req', '-new', ...ec, '-keyout', file('broker.key'), '-out', file('broker.csr'), '-subj', '/CN=localhost']);
  await openssl(['x509', '-req', '-in', file('broker.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-out', file('broker.pem'), '-days', DAYS, '-extfile', file('broker.ext')]);
  await openssl(['pkcs12', '-export', '-in', file('broker.pem'), '-inkey', file('broker.key'), '-certfile', file('ca.pem'),
    '-name', 'broker', '-out', file('broker.p12'), '-passout', `file:${file('keystore.password')}`]);
  for (const secret of ['ca.key', 'broker.key', 'broker.p12']) chmodSync(file(secret), 0o600);
  return { caFile: file('ca.pem'), keystoreFile: file('broker.p12'), keystorePassword };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { timeout: 30_000 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('the secure stack makes its certificates with openssl, which is not on PATH (Debian: apt-get install openssl)');
    }
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}
