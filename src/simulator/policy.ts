/**
 * Who may do what, as the IoT policies of a Fleet Provisioning account say. The claim certificate's policy
 * (PROTOCOL.md, least privilege) allows only the provisioning topics; a device's certificate may use
 * anything but them; plain MQTT has no certificate and so no policy.
 */
import { parseTopic } from '../topics.js';

/** What a connection is allowed, decided at CONNECT from the certificate it presented. */
export type Role = 'claim' | 'device' | 'anonymous';

/** True when `role` may subscribe to `filter`. Wildcards never reach the provisioning topics of a claim. */
export function maySubscribe(role: Role, filter: string): boolean {
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
  switch (role) {
    case 'anonymous':
      return true;
    case 'claim':
      return parseTopic(topic) !== undefined;
    case 'device':
      return !reachesProvisioning(topic);
  }
}

/** True when a topic or filter names, or could match, a claim-only topic. */
function reachesProvisioning(filter: string): boolean {
  const [first, second] = filter.split('/');
  // `+/…` and `#` never match `$` topics (MQTT 3.1.1 §4.7.2), so only `$aws/…` filters can reach them.
  if (first !== '$aws') return false;
  return second === undefined || ['+', '#', 'certificates', 'provisioning-templates'].includes(second);
}
