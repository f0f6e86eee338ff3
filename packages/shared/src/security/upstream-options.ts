/**
 * `options` a client may pass through to ByByBG. Each is a form field of the upstream call,
 * and upstream parameters can change what the operator pays for a call or make ByByBG
 * fetch a URL, so only names the operator allows (BYBYBG_ALLOWED_OPTIONS) go through.
 */

/** What ByByBG reads as a form field name; `file` is the image itself. */
const OPTION_NAME = /^[a-z][a-z0-9_]{0,63}$/;

export const isOptionName = (name: string): boolean => OPTION_NAME.test(name) && name !== 'file';

/** The names in `options` that `allowed` does not list, in their order. */
export function refusedOptions(options: Record<string, string> | undefined, allowed: readonly string[]): string[] {
  return Object.keys(options ?? {}).filter((name) => !allowed.includes(name));
}

/** The sentence a client reads about what it may send. */
export function allowedOptionsText(allowed: readonly string[]): string {
  return allowed.length === 0
    ? 'this deployment forwards no options to ByByBG'
    : `the options forwarded to ByByBG are: ${allowed.join(', ')}`;
}
