/**
 * Who may do what, as the IoT policies of a Fleet Provisioning account say. The claim certificate's policy
 * (least privilege) allows only the provisioning topics; a device's certificate may use anything but
 * them (the simulator adds one exception: a device connected as its own thing may use them to rotate its
 * certificate); plain MQTT has no certificate and so no policy. `$SYS` is no one's: AWS IoT has no
 * `$SYS` topics, and aedes's would show every client id and let a publisher disconnect other clients.
 */
import { parseTopic } from '../protocol/topics.js';

/** What a connection is allowed, decided at CONNECT from the certificate it presented. */
export type Role = 'claim' | 'device' | 'anonymous';

/** True when `role` may subscribe to `filter`. Wildcards never reach the provisioning topics of a claim. */
export function maySubscribe(role: Role, filter: string): boolean {
  if (isSys(filter)) return false;
  switch (role) {
    case 'anonymous':
      return true;
    case 'claim':
      return parseTopic(filter) !== undefined;
    case 'device':
      return !reachesProvisioning(filter);
  }
}

/** True when `role` may publish to `topic`; on AWS an unauthorised publish closes the connection. */
export function mayPublish(role: Role, topic: string): boolean {
  if (isSys(topic)) return false;
  switch (role) {
    case 'anonymous':
      return true;
    case 'claim':
      return parseTopic(topic) !== undefined;
    case 'device':
      return !reachesProvisioning(topic);
  }
}

/** True for the broker's own `$SYS` topics (and filters reaching them): no role may use them. */
export function isSys(topic: string): boolean {
  return topic === '$SYS' || topic.startsWith('$SYS/');
}

/** True when a topic or filter names, or could match, a claim-only topic. */
function reachesProvisioning(filter: string): boolean {
  const [first, second] = filter.split('/');
  // `+/…` and `#` never match `$` topics (MQTT 3.1.1 §4.7.2), so only `$aws/…` filters can reach them.
  if (first !== '$aws') return false;
  return second === undefined || ['+', '#', 'certificates', 'provisioning-templates'].includes(second);
}
