/**
 * Environment substitution in load profiles, as in docker-compose and k6's __ENV: `${NAME}` and
 * `${NAME:-default}` in the profile's text are replaced before it is parsed; `$${` is a literal `${`.
 * A variable that is unset and has no default is an error naming it (never an empty string by surprise).
 * The CLI passes the environment in; nothing here reads process state.
 */
export function substituteEnv(text: string, env: Readonly<Record<string, string | undefined>>): { text: string; missing: string[] } {
  const missing: string[] = [];
  const out = text.replace(/\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${') return '${';
    const v = env[name!];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    missing.push(name!);
    return match;
  });
  return { text: out, missing: [...new Set(missing)] };
}
