/**
 * Optional fields under `exactOptionalPropertyTypes`: a field is either there with a value or not there
 * at all, never there as `undefined`. Spread `optional(key, value)` into an object literal.
 */

/** `{ [key]: value }` when `value` is defined, `{}` otherwise. */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}
