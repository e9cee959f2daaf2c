import { chmod, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { IDENTITY_FILES, startSimulator } from '../../src/simulator/index.js';
import { loadOrCreateIdentity } from '../../src/simulator/identity.js';

describe('simulator identity in a shared directory', () => {
  it('saves through fresh files: symlinks planted at the temp names or a target leak no key and overwrite nothing', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'sim-shared-'));
    try {
      // A directory others may write to, as /tmp is: an attacker plants links before the simulator starts.
      await chmod(shared, 0o1777);
      const dir = join(shared, 'sim');
      await mkdir(dir);
      await chmod(dir, 0o777);
      const victim = join(shared, 'victim.conf');
      await writeFile(victim, 'precious\n');
      const drop = join(shared, 'attacker-drop');
      await writeFile(drop, '', { mode: 0o666 });
      for (const name of Object.values(IDENTITY_FILES)) {
        // The temp name the old writer used; keys pointed at a file the attacker reads, the rest at a victim.
        const target = name.endsWith('.key') ? drop : victim;
        await symlink(target, join(dir, `${name}.${process.pid}.tmp`));
      }
      await symlink(victim, join(dir, IDENTITY_FILES.caPrivateKey));

      const identity = await loadOrCreateIdentity(dir);

      expect(await readFile(victim, 'utf8')).toBe('precious\n');
      expect(await readFile(drop, 'utf8')).toBe('');
      const expected: Record<string, string> = {
        [IDENTITY_FILES.caCertificate]: identity.ca.certificatePem,
        [IDENTITY_FILES.caPrivateKey]: identity.ca.privateKeyPem,
        [IDENTITY_FILES.serverCertificate]: identity.server.certificatePem,
        [IDENTITY_FILES.serverPrivateKey]: identity.server.privateKeyPem,
        [IDENTITY_FILES.claimCertificate]: identity.claim.certificatePem,
        [IDENTITY_FILES.claimPrivateKey]: identity.claim.privateKeyPem,
      };
      for (const [name, text] of Object.entries(expected)) {
        const info = await lstat(join(dir, name));
        expect({ name, file: info.isFile() }).toEqual({ name, file: true });
        expect({ name, mode: info.mode & 0o777 }).toEqual({
          name,
          mode: name.endsWith('.key') ? 0o600 : 0o644,
        });
        expect(await readFile(join(dir, name), 'utf8')).toBe(text);
      }
    } finally {
      await rm(shared, { recursive: true, force: true });
    }
  });
});

describe('simulator on a port already in use', () => {
  it('rejects with INVALID_ARGUMENT naming the port and what to do', async () => {
    const holder = createServer();
    await new Promise<void>((listening) => holder.listen(0, '127.0.0.1', () => listening()));
    try {
      const address = holder.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address');
      await expect(startSimulator({ tls: false, port: address.port })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: `The simulator cannot listen: port ${address.port} on 127.0.0.1 is already in use (EADDRINUSE). Stop what listens there, or pick another port (0 picks a free one).`,
      });
    } finally {
      await new Promise<void>((closed) => holder.close(() => closed()));
    }
  });
});
