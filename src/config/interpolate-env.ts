// `${VAR}` substitution for policy scalars. It runs on each scalar's parsed value
// after the YAML is read, so line and column numbers always point at the text the
// operator wrote, never at the expanded value.
//
//   ${NAME}            the variable's value; an error if it is unset
//   ${NAME:-default}   the default when the variable is unset or empty (as in sh)
//   $${                a literal "${"
//   $ anywhere else    a literal "$"

export type Interpolation =
  | { readonly ok: true; readonly value: string; readonly usedVars: boolean; readonly unset: readonly string[] }
  | { readonly ok: false; readonly message: string };

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

const NO_VARS: readonly string[] = Object.freeze([]);

export function interpolateEnv(text: string, env: Readonly<Record<string, string | undefined>>): Interpolation {
  // Most scalars have no "$" at all: a policy has ~10^5 of them.
  if (!text.includes('$')) return { ok: true, value: text, usedVars: false, unset: NO_VARS };
  let value = '';
  let usedVars = false;
  const unset: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      value += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      value += text[i];
      i += 1;
      continue;
    }
    const end = text.indexOf('}', i + 2);
    if (end === -1) {
      return { ok: false, message: `"\${" is never closed by "}" (write "$\${" for a literal "\${")` };
    }
    const inner = text.slice(i + 2, end);
    const match = REFERENCE.exec(inner);
    if (match === null) {
      return {
        ok: false,
        message: `"\${${inner}}" is not a variable reference: write \${NAME} or \${NAME:-default} (NAME is letters, digits and _)`,
      };
    }
    const [, name, fallback] = match as unknown as [string, string, string | undefined];
    const current = env[name];
    usedVars = true;
    if (fallback !== undefined && (current === undefined || current === '')) value += fallback;
    else if (current !== undefined) value += current;
    else if (!unset.includes(name)) unset.push(name);
    i = end + 1;
  }
  return { ok: true, value, usedVars, unset };
}

export function describeUnset(names: readonly string[]): string {
  return names.length === 1
    ? `environment variable ${names[0]} is not set`
    : `environment variables ${names.join(', ')} are not set`;
}
