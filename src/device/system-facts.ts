/**
 * Facts about the machine a device runs on, for template parameters (`SerialNumber`, `MacAddress`, …), so
 * a factory image needs no per-device script: the hostname, the MAC and IP address of the interface that
 * carries the default route, a hardware serial number, and the claim certificate's id.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname as osHostname, networkInterfaces as osNetworkInterfaces } from 'node:os';
import { join } from 'node:path';

/** What {@link systemFacts} found. A fact it could not find is absent. */
export interface SystemFacts {
  /** The kernel's hostname. */
  hostname: string;
  /** The interface that carries the default route (`eth0`, `wlan0`, …). */
  interfaceName?: string;
  /** Its MAC address, lowercase `aa:bb:cc:dd:ee:ff`. */
  macAddress?: string;
  /** Its first IPv4 address (else its first IPv6 address). */
  ipAddress?: string;
  /**
   * A hardware serial number: `/sys/class/dmi/id/product_serial` (PCs, servers; readable by root only),
   * `/proc/device-tree/serial-number` (many ARM boards), or the `Serial` line of `/proc/cpuinfo`
   * (Raspberry Pi). Placeholders such as `To be filled by O.E.M.` or all zeros are ignored.
   */
  serialNumber?: string;
  /** The id AWS gives the claim certificate (SHA-256 of its DER), when one was given. */
  certificateId?: string;
}

/** Options of {@link systemFacts}. */
export interface SystemFactsOptions {
  /** Read `/proc`, `/sys` and `/etc` under this directory instead of `/` (tests, images being prepared). */
  root?: string;
  /** The claim certificate (PEM), for `certificateId`. */
  claimCertificate?: string;
  /** Where the IP addresses come from. Default `os.networkInterfaces`. */
  networkInterfaces?: typeof osNetworkInterfaces;
}

const PLACEHOLDER_SERIALS = [
  /^$/,
  /^0+$/,
  /^none$/i,
  /^not (specified|applicable|available)$/i,
  /^to be filled by o\.e\.m\.?$/i,
  /^default string$/i,
  /^system serial number$/i,
  /^0123456789$/,
];

async function read(root: string, path: string): Promise<string | undefined> {
  try {
    return await readFile(join(root, path), 'utf8');
  } catch {
    // Missing on this kind of machine, or readable by root only: the fact is simply unknown.
    return undefined;
  }
}

function usableSerial(text: string | undefined): string | undefined {
  // Device-tree strings end in a NUL byte.
  const value = text?.replace(/\0/g, '').trim();
  if (value === undefined || PLACEHOLDER_SERIALS.some((p) => p.test(value))) return undefined;
  return value;
}

/** The interface of the default route with the lowest metric, from `/proc/net/route`. */
function defaultInterface(route: string | undefined): string | undefined {
  let best: { name: string; metric: number } | undefined;
  for (const line of (route ?? '').split('\n').slice(1)) {
    const [name, destination, , flags, , , metric, mask] = line.trim().split(/\s+/);
    if (name === undefined || destination !== '00000000' || mask !== '00000000') continue;
    if ((Number.parseInt(flags ?? '0', 16) & 1) === 0) continue;
    const value = Number(metric ?? 0);
    if (best === undefined || value < best.metric) best = { name, metric: value };
  }
  return best?.name;
}

/**
 * Read the facts. Never throws for a fact it cannot find; each is looked up in turn and left out when
 * absent (a container has no DMI serial, a PC no device tree).
 */
export async function systemFacts(options: SystemFactsOptions = {}): Promise<SystemFacts> {
  const root = options.root ?? '/';
  const interfaces = (options.networkInterfaces ?? osNetworkInterfaces)();
  const kernelName = (await read(root, 'proc/sys/kernel/hostname'))?.trim();
  const etcName = (await read(root, 'etc/hostname'))?.trim();
  const facts: SystemFacts = {
    hostname: kernelName || etcName || (options.root === undefined ? osHostname() : ''),
  };
  let name = defaultInterface(await read(root, 'proc/net/route'));
  // Without a route table, the first interface that is up and not loopback (never for another root).
  if (name === undefined && options.root === undefined) {
    name = Object.entries(interfaces).find(([, list]) => list?.some((a) => !a.internal))?.[0];
  }
  if (name !== undefined) {
    facts.interfaceName = name;
    const addresses = interfaces[name] ?? [];
    const fromSys = (await read(root, `sys/class/net/${name}/address`))?.trim().toLowerCase();
    const mac = fromSys || addresses.find((a) => a.mac !== '00:00:00:00:00:00')?.mac;
    if (mac !== undefined && mac !== '' && mac !== '00:00:00:00:00:00') facts.macAddress = mac;
    const ip = addresses.find((a) => a.family === 'IPv4') ?? addresses.find((a) => a.family === 'IPv6');
    if (ip !== undefined) facts.ipAddress = ip.address;
  }
  const serial =
    usableSerial(await read(root, 'sys/class/dmi/id/product_serial')) ??
    usableSerial(await read(root, 'proc/device-tree/serial-number')) ??
    usableSerial(/^Serial\s*:\s*(\S+)\s*$/m.exec((await read(root, 'proc/cpuinfo')) ?? '')?.[1]);
  if (serial !== undefined) facts.serialNumber = serial;
  if (options.claimCertificate !== undefined) {
    facts.certificateId = new X509Certificate(options.claimCertificate).fingerprint256
      .replace(/:/g, '')
      .toLowerCase();
  }
  return facts;
}

/** The names `--param-from-system` accepts, and the fact each reads. */
export const SYSTEM_FACT_NAMES: Readonly<Record<SystemFactName, keyof SystemFacts>> = {
  hostname: 'hostname',
  interface: 'interfaceName',
  mac: 'macAddress',
  ip: 'ipAddress',
  serial: 'serialNumber',
  'certificate-id': 'certificateId',
};

/** A fact's name on the command line (`--param-from-system SerialNumber=serial`). */
export type SystemFactName = 'hostname' | 'interface' | 'mac' | 'ip' | 'serial' | 'certificate-id';
