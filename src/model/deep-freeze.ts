// One walk that freezes a value and everything it holds (arrays, plain
// objects, and the values of Maps, such as a route table's byName), for the
// parsed policy, a reloaded policy's parts and a followed decision. Frozen
// values are not walked again: shared settings objects are frozen once.

export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  // No array of values per object (Object.values): a 10,000-route policy has a few hundred thousand of them.
  if (Array.isArray(value)) {
    for (const child of value) deepFreeze(child);
  } else if (value instanceof Map) {
    for (const child of value.values()) deepFreeze(child);
  } else {
    const record = value as Record<string, unknown>;
    for (const key in record) deepFreeze(record[key]);
  }
  return value;
}
