/**
 * systemFacts() on fixture trees laid out as /proc, /sys and /etc are on a PC, a Raspberry Pi and an ARM
 * board with a device tree, read through the root-directory option.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { NetworkInterfaceInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { systemFacts } from '../../src/index.js';
import { certificateIdOf, issueCertificate, makeCa } from '../helpers/x509.js';

const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
`;

const INTERFACES: Record<string, NetworkInterfaceInfo[]> = {
  lo: [
    {
      address: '127.0.0.1',
      netmask: '255.0.0.0',
      family: 'IPv4',
      mac: '00:00:00:00:00:00',
      internal: true,
      cidr: '127.0.0.1/8',
    },
  ],
  eth0: [
    {
      address: 'fe80::1',
      netmask: 'ffff:ffff:ffff:ffff::',
      family: 'IPv6',
      mac: 'dc:a6:32:01:02:03',
      internal: false,
      cidr: 'fe80::1/64',
      scopeid: 2,
    },
    {
      address: '192.168.0.42',
      netmask: '255.255.255.0',
      family: 'IPv4',
      mac: 'dc:a6:32:01:02:03',
      internal: false,
      cidr: '192.168.0.42/24',
    },
  ],
  wlan0: [
    {
      address: '192.168.2.7',
      netmask: '255.255.255.0',
      family: 'IPv4',
      mac: 'dc:a6:32:09:09:09',
      internal: false,
      cidr: '192.168.2.7/24',
    },
  ],
};

const roots: string[] = [];

async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'system-facts-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

describe('systemFacts', () => {
  it('reads a PC: hostname, the default-route interface with the lowest metric, its MAC and IPv4, the DMI serial', async () => {
    const root = await tree({
      'proc/sys/kernel/hostname': 'line-7-station-3\n',
      'proc/net/route': ROUTE,
      'sys/class/net/eth0/address': 'DC:A6:32:01:02:03\n',
      'sys/class/dmi/id/product_serial': 'PF3ABC12\n',
      'proc/cpuinfo': 'processor\t: 0\nmodel name\t: Some CPU\n',
    });
    const facts = await systemFacts({ root, networkInterfaces: () => INTERFACES });
    expect(facts).toEqual({
      hostname: 'line-7-station-3',
      interfaceName: 'eth0',
      macAddress: 'dc:a6:32:01:02:03',
      ipAddress: '192.168.0.42',
      serialNumber: 'PF3ABC12',
    });
  });

  it('reads a Raspberry Pi serial from /proc/cpuinfo when DMI only holds a placeholder', async () => {
    const root = await tree({
      'etc/hostname': 'raspberrypi\n',
      'sys/class/dmi/id/product_serial': 'To be filled by O.E.M.\n',
      'proc/cpuinfo':
        'processor\t: 0\nHardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 100000002a5f3c1e\nModel\t\t: Raspberry Pi 4\n',
    });
    const facts = await systemFacts({ root, networkInterfaces: () => ({}) });
    expect(facts).toEqual({ hostname: 'raspberrypi', serialNumber: '100000002a5f3c1e' });
  });

  it('reads a device-tree serial (NUL-terminated) before /proc/cpuinfo, and ignores an all-zero one', async () => {
    const dt = await tree({
      'proc/sys/kernel/hostname': 'board\n',
      'proc/device-tree/serial-number': '1423119032003\0',
      'proc/cpuinfo': 'Serial\t\t: 0000000000000000\n',
    });
    expect((await systemFacts({ root: dt, networkInterfaces: () => ({}) })).serialNumber).toBe(
      '1423119032003',
    );
    const zeros = await tree({
      'proc/sys/kernel/hostname': 'board\n',
      'proc/cpuinfo': 'Serial\t\t: 0000000000000000\n',
    });
    expect((await systemFacts({ root: zeros, networkInterfaces: () => ({}) })).serialNumber).toBeUndefined();
  });

  it("gives the claim certificate's id as AWS computes it", async () => {
    const ca = await makeCa();
    const claim = await issueCertificate(ca, ca.keys.publicKey, 'CN=claim');
    const root = await tree({ 'proc/sys/kernel/hostname': 'x\n' });
    const facts = await systemFacts({ root, claimCertificate: claim, networkInterfaces: () => ({}) });
    expect(facts.certificateId).toBe(certificateIdOf(claim));
  });
});
